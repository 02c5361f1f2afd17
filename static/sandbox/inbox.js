// Reload to show new messages, but never while someone is typing.
setInterval(function () {
  var input = document.getElementById('content');
  if (!input || (document.activeElement !== input && input.value === '')) location.reload();
}, 5000);

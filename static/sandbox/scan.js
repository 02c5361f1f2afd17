// The scan page: the button says what pressing it does for the chosen test user, and the
// new-user field shows only when no existing user is chosen.
(function () {
  var select = document.getElementById('openid');
  if (!select) return;
  var button = document.getElementById('follow');
  var fresh = document.getElementById('new-user');
  function update() {
    var opt = select.options[select.selectedIndex];
    var following = opt.getAttribute('data-following') === 'true';
    button.textContent = following ? '已关注 — 再次扫码' : '关注公众号';
    button.className = following ? 'secondary' : '';
    fresh.style.display = opt.value === '' ? 'block' : 'none';
  }
  select.addEventListener('change', update);
  update();
})();

// Poster layout by dragging: boxes over the campaign's poster preview for the QR code, the
// avatar and the nickname, kept in step with the X/Y/size fields of the form. The fields stay
// what is saved (and work without this script); dragging a box only writes into them.
(function () {
  var stage = document.querySelector('.poster-stage');
  var img = stage && stage.querySelector('img');
  var form = document.getElementById('campaign-form');
  if (!stage || !img || !form) return;
  var elements = [
    { name: 'qr', x: 'qr_x', y: 'qr_y', size: 'qr_size', text: false },
    { name: 'avatar', x: 'avatar_x', y: 'avatar_y', size: 'avatar_size', text: false },
    { name: 'nickname', x: 'nick_x', y: 'nick_y', size: 'nick_size', text: true }
  ];
  function field(name) { return form.elements[name]; }
  function num(name) {
    var v = parseInt(field(name).value, 10);
    return isNaN(v) ? 0 : v;
  }
  // Preview pixels per background pixel.
  function scale() { return img.naturalWidth ? img.clientWidth / img.naturalWidth : 0; }
  // A nickname box is drawn for about four characters; it is clamped by its first one.
  function extent(e) {
    var s = num(e.size);
    return e.text ? { w: s * 4, h: s * 1.3, clampW: s, clampH: s } : { w: s, h: s, clampW: s, clampH: s };
  }
  var boxes = elements.map(function (e) {
    var box = document.createElement('div');
    box.className = 'layout-box layout-' + e.name;
    box.dataset.element = e.name;
    box.hidden = true;
    stage.appendChild(box);
    return { e: e, box: box };
  });
  function place() {
    var k = scale();
    if (!k) return;
    boxes.forEach(function (o) {
      var d = extent(o.e);
      o.box.style.left = num(o.e.x) * k + 'px';
      o.box.style.top = num(o.e.y) * k + 'px';
      o.box.style.width = d.w * k + 'px';
      o.box.style.height = d.h * k + 'px';
      o.box.hidden = false;
    });
  }
  boxes.forEach(function (o) {
    o.box.addEventListener('pointerdown', function (down) {
      var k = scale();
      if (!k) return;
      down.preventDefault();
      var x0 = num(o.e.x), y0 = num(o.e.y);
      o.box.setPointerCapture(down.pointerId);
      o.box.classList.add('dragging');
      function move(m) {
        var d = extent(o.e);
        var x = Math.round(x0 + (m.clientX - down.clientX) / k);
        var y = Math.round(y0 + (m.clientY - down.clientY) / k);
        field(o.e.x).value = Math.max(0, Math.min(x, img.naturalWidth - d.clampW));
        field(o.e.y).value = Math.max(0, Math.min(y, img.naturalHeight - d.clampH));
        place();
      }
      function up() {
        o.box.classList.remove('dragging');
        o.box.removeEventListener('pointermove', move);
        o.box.removeEventListener('pointerup', up);
        o.box.removeEventListener('pointercancel', up);
      }
      o.box.addEventListener('pointermove', move);
      o.box.addEventListener('pointerup', up);
      o.box.addEventListener('pointercancel', up);
    });
  });
  form.addEventListener('input', place);
  window.addEventListener('resize', place);
  if (img.complete) place(); else img.addEventListener('load', place);
})();

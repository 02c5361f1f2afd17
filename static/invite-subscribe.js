// The invite page's "tell me when friends join" button inside WeChat: configures JS-SDK with
// the signature the page was rendered with, so WeChat shows the <wx-open-subscribe> open tag,
// and thanks the follower once they have answered (WeChat pushes the answer to Fission too).
(function () {
  var me = document.currentScript;
  var tag = document.getElementById('subscribe');
  if (!me || !tag || typeof wx === 'undefined') return;
  wx.config({
    debug: false,
    appId: me.dataset.appId,
    timestamp: Number(me.dataset.timestamp),
    nonceStr: me.dataset.nonce,
    signature: me.dataset.signature,
    jsApiList: ['checkJsApi'],
    openTagList: ['wx-open-subscribe']
  });
  tag.addEventListener('success', function () {
    var done = document.getElementById('subscribe-done');
    if (done) done.hidden = false;
  });
})();

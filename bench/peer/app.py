"""Reference implementation of the WeChat push callback, written the way a Python team
usually writes it: Flask, wechatpy for the signature, the safe-mode crypto and the message
parsing, psycopg 3 with one connection per worker process, served by gunicorn sync workers.

It is the yardstick of bench/compare.sh, so it does the minimum a correct referral callback
must do and nothing more: verify, decrypt (safe mode), parse, then in ONE transaction record
the push once (WeChat retries with the same CreateTime) and, for a follow through an invite
code, credit the code's owner once per new follower. It answers `success`, which WeChat
accepts in plaintext and in safe mode alike.

Settings (environment):
  DATABASE_URL              postgresql://postgres@127.0.0.1:5432/fission_peer by default
  WECHAT_TOKEN              the callback Token ("fission" by default, like the generator)
  WECHAT_ENCODING_AES_KEY   optional; when set, only encrypted (safe mode) pushes are accepted
  WECHAT_APPID              the appid that encrypted pushes must carry
"""

import logging
import os

import psycopg
from flask import Flask, abort, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import SubscribeScanEvent
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

TOKEN = os.environ.get("WECHAT_TOKEN") or "fission"
AES_KEY = os.environ.get("WECHAT_ENCODING_AES_KEY") or None
APPID = os.environ.get("WECHAT_APPID") or ""
DATABASE_URL = (
    os.environ.get("DATABASE_URL")
    or "postgresql://postgres@127.0.0.1:5432/fission_peer"
)

app = Flask(__name__)
# WeChat pushes are small; refuse anything large before reading it.
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
log = logging.getLogger("peer")

crypto = WeChatCrypto(TOKEN, AES_KEY, APPID) if AES_KEY else None

# One connection per worker process, opened on first use (after gunicorn forked the worker)
# and reopened if it breaks.
_conn = None


def db():
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(DATABASE_URL, autocommit=True)
    return _conn


def verify_signature():
    args = request.args
    try:
        check_signature(
            TOKEN,
            args.get("signature", ""),
            args.get("timestamp", ""),
            args.get("nonce", ""),
        )
    except InvalidSignatureException:
        abort(403)


@app.get("/wechat/callback")
def url_check():
    verify_signature()
    return request.args.get("echostr", "")


@app.post("/wechat/callback")
def push():
    verify_signature()
    body = request.get_data()
    args = request.args
    if args.get("encrypt_type") == "aes":
        if crypto is None:
            abort(400, "encrypted push, but no WECHAT_ENCODING_AES_KEY is configured")
        try:
            body = crypto.decrypt_message(
                body,
                args.get("msg_signature", ""),
                args.get("timestamp", ""),
                args.get("nonce", ""),
            )
        except InvalidSignatureException:
            abort(403)
        except InvalidAppIdException:
            abort(400, "push encrypted for another appid")
        except Exception:
            abort(400, "cannot decrypt the push")
    elif crypto is not None:
        # The signature does not cover a plaintext body: safe mode takes only encrypted pushes.
        abort(403)
    try:
        msg = parse_message(body)
    except Exception:
        abort(400, "malformed push")
    if msg is None or not msg.source:
        abort(400, "malformed push")
    record(msg)
    return "success"


def record(msg):
    """Records the push once and credits a follow through an invite code, in one transaction."""
    event = getattr(msg, "event", "") or msg.type
    event_key = getattr(msg, "key", None) or getattr(msg, "scene_id", None) or ""
    scene = None
    if isinstance(msg, SubscribeScanEvent):
        # wechatpy renames "subscribe" + "qrscene_N" to "subscribe_scan" + "N"; the dedupe key
        # keeps what WeChat sent.
        scene = msg.scene_id
        event, event_key = "subscribe", "qrscene_" + scene
    elif msg.type != "event":
        event_key = str(msg.id)

    conn = db()
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO events (from_user, create_time, event, event_key)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (msg.source, msg.time, event, event_key),
        ).fetchone()
        if row is None:
            return  # a retry of a push already recorded
        if scene is None:
            return
        code = conn.execute(
            "SELECT owner FROM codes WHERE scene = %s", (scene,)
        ).fetchone()
        if code is None or code[0] == msg.source:
            return  # unknown code, or a follower scanning their own code
        conn.execute(
            "INSERT INTO referrals (invitee, inviter, scene, event_id)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (invitee) DO NOTHING",
            (msg.source, code[0], scene, row[0]),
        )

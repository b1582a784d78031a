#!/usr/bin/env python3
"""A small fake Telegram Bot API for the ARM smoke test (scripts/arm-smoke).

The integration tests have a complete fake in Rust (tests/it/support); this one
is what a binary built for another architecture can be run against without
building the test suite for that architecture. It answers getMe, getUpdates
(long polling), sendMessage, setMyCommands and, with `true`, anything else.

    fake-telegram.py --dir DIR -- COMMAND...

writes DIR/storyline.toml pointing at itself, starts COMMAND ... run (the binary,
usually behind scripts/qemu-run) in DIR, waits for it to poll, pushes one
/settings message, checks that the reply is the settings menu and that the
update is confirmed, stops the daemon with SIGTERM and checks that it exits 0
and says STOPPING to a systemd notify socket. Then it runs COMMAND ... doctor
against the same fake. Every wait has a deadline; nothing sleeps blindly.
Exit code 0 when all of it held, 1 otherwise.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "123456:SMOKE-token-SECRET-0123456789abcde"
CHAT = 4242  # a private chat: its id is the user's id
FIRST_UPDATE_ID = 1000


class State:
    def __init__(self):
        self.lock = threading.Condition()
        self.calls = []  # (method, params)
        self.updates = []
        self.confirmed_offset = 0
        self.next_message_id = 1

    def record(self, method, params):
        with self.lock:
            self.calls.append((method, params))
            self.lock.notify_all()

    def wait_for(self, what, deadline, pred):
        """Waits until pred(calls) returns something true; fails at the deadline."""
        with self.lock:
            while True:
                found = pred(self.calls)
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    methods = [m for m, _ in self.calls]
                    raise TimeoutError(f"timed out waiting for {what}; calls: {methods}")
                self.lock.wait(left)

    def push_settings(self):
        with self.lock:
            update_id = FIRST_UPDATE_ID + len(self.updates)
            user = {"id": CHAT, "is_bot": False, "first_name": "Ada", "username": "ada"}
            self.updates.append({
                "update_id": update_id,
                "message": {
                    "message_id": self.next_message_id,
                    "from": user,
                    "chat": {"id": CHAT, "type": "private", "first_name": "Ada", "username": "ada"},
                    "date": int(time.time()),
                    "text": "/settings",
                    "entities": [{"offset": 0, "length": 9, "type": "bot_command"}],
                },
            })
            self.next_message_id += 1
            self.lock.notify_all()
            return update_id


STATE = State()


def api(method, params):
    if method == "getMe":
        return {"id": 1, "is_bot": True, "first_name": "Smoke", "username": "smoke_test_bot"}
    if method == "getUpdates":
        offset = int(params.get("offset", 0) or 0)
        timeout = min(float(params.get("timeout", 0) or 0), 5.0)
        deadline = time.monotonic() + timeout
        with STATE.lock:
            if offset > STATE.confirmed_offset:
                STATE.confirmed_offset = offset
                STATE.lock.notify_all()
            while True:
                pending = [u for u in STATE.updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if pending or left <= 0:
                    return pending
                STATE.lock.wait(left)
    if method in ("sendMessage", "editMessageText"):
        with STATE.lock:
            message_id = STATE.next_message_id
            STATE.next_message_id += 1
        return {
            "message_id": message_id,
            "chat": {"id": int(params.get("chat_id", 0)), "type": "private"},
            "date": int(time.time()),
            "text": params.get("text", ""),
        }
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_call(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(parts) != 2 or parts[0] != "bot" + TOKEN:
            return self.answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        method = parts[1]
        params = dict(urllib.parse.parse_qsl(url.query))
        if body:
            if "json" in (self.headers.get("Content-Type") or ""):
                params.update(json.loads(body))
            else:
                params.update(urllib.parse.parse_qsl(body.decode()))
        STATE.record(method, params)
        self.answer(200, {"ok": True, "result": api(method, params)})

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = handle_call
    do_POST = handle_call


def settings_menu_for_chat(calls):
    for method, params in calls:
        if method != "sendMessage" or int(params.get("chat_id", 0)) != CHAT:
            continue
        markup = params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        buttons = [b.get("text", "") for row in markup.get("inline_keyboard", []) for b in row]
        if any("Dry run" in b for b in buttons):
            return buttons
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--deadline", type=float, default=120.0,
                        help="seconds for each wait (qemu is slow)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the storyline command after --")
    if os.sep in command[0]:
        # The daemon runs in --dir; a relative path would be looked up there.
        command[0] = os.path.abspath(command[0])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    os.makedirs(os.path.join(args.dir, "media"), exist_ok=True)
    config = os.path.join(args.dir, "storyline.toml")
    with open(config, "w") as f:
        f.write(f"""[telegram]
bot_token = "{TOKEN}"
api_url = "{url}"
poll_timeout_secs = 2

[access]
admin_user_ids = [{CHAT}]
allowed_chat_ids = [{CHAT}]

[web]
listen = "127.0.0.1:0"

[log]
level = "debug"
""")

    notify_path = os.path.join(args.dir, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    for secret in ("STORYLINE_TELEGRAM_BOT_TOKEN", "STORYLINE_INSTAGRAM_APP_SECRET"):
        env.pop(secret, None)

    log_path = os.path.join(args.dir, "storyline.log")
    started = time.monotonic()
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(command + ["--config", config, "run"], cwd=args.dir,
                                  env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    ok = False
    try:
        deadline = lambda: time.monotonic() + args.deadline
        STATE.wait_for("getMe", deadline(), lambda calls: any(m == "getMe" for m, _ in calls))
        STATE.wait_for("the first getUpdates", deadline(),
                       lambda calls: any(m == "getUpdates" for m, _ in calls))
        polling = time.monotonic() - started
        update_id = STATE.push_settings()
        pushed = time.monotonic()
        buttons = STATE.wait_for("the /settings menu", deadline(), settings_menu_for_chat)
        answered = time.monotonic() - pushed
        STATE.wait_for(f"confirmation of update {update_id}", deadline(),
                       lambda _: STATE.confirmed_offset > update_id)
        daemon.send_signal(signal.SIGTERM)
        status = daemon.wait(timeout=args.deadline)
        if status != 0:
            raise RuntimeError(f"storyline run exited with {status} after SIGTERM")
        notify.settimeout(0)
        notes = []
        while True:
            try:
                notes.append(notify.recv(512).decode().strip())
            except BlockingIOError:
                break
        if "READY=1" not in notes or "STOPPING=1" not in notes:
            raise RuntimeError(f"systemd notifications missing: {notes}")
        print(f"run: polling after {polling:.1f} s, /settings answered in {answered:.2f} s "
              f"({len(buttons)} buttons), update confirmed, READY and STOPPING sent, "
              f"exit 0 on SIGTERM")

        doctor = subprocess.run(command + ["--config", config, "doctor"], cwd=args.dir, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=args.deadline)
        if doctor.returncode != 0 or "@smoke_test_bot answers" not in doctor.stdout:
            raise RuntimeError(f"doctor exited {doctor.returncode}:\n{doctor.stdout}{doctor.stderr}")
        print("doctor: " + doctor.stdout.strip().splitlines()[-1])
        with open(log_path, "rb") as f:
            if TOKEN.encode() in f.read():
                raise RuntimeError("the bot token appears in the log")
        ok = True
    except Exception as e:  # a failed check: say what, show the log
        print(f"FAILED: {e}", file=sys.stderr)
        with open(log_path, "rb") as f:
            tail = f.read().decode(errors="replace").splitlines()[-40:]
        print("---- storyline.log (tail) ----\n" + "\n".join(tail), file=sys.stderr)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        server.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

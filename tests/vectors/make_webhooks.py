"""Standard Webhooks vectors, made by the reference implementation (PyPI `standardwebhooks`),
not by our signer: tests/api/webhooks.rs checks that ours signs and verifies exactly the same.

    python3 -m venv /tmp/swh && /tmp/swh/bin/pip install standardwebhooks==1.3.0
    /tmp/swh/bin/python tests/vectors/make_webhooks.py
"""
import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import standardwebhooks

HERE = Path(__file__).parent
CASES = [
    # (secret bytes, id, unix timestamp, body)
    (bytes(range(32)), "evt_01KBN9ZQ5X7Y6W2V3T4S5R6Q7P", 1764806400,
     '{"id":"evt_01KBN9ZQ5X7Y6W2V3T4S5R6Q7P","type":"order.paid","data":{"order":{"out_trade_no":"T1","total_amount":"12.34"}}}'),
    (b"alipay-notify webhook secret, 38 bytes", "evt_01KBNA0000000000000000000A", 1764806401,
     '{"subject":"测试 a+b&c=d 😀","amount":"0.01"}'),
    (bytes([0xFF] * 24), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
     '{"test": 2432232314}'),
]

vectors = []
for secret, msg_id, ts, body in CASES:
    whsec = "whsec_" + base64.b64encode(secret).decode()
    signature = standardwebhooks.Webhook(whsec).sign(
        msg_id, datetime.fromtimestamp(ts, tz=timezone.utc), body.encode())
    wrong = "whsec_" + base64.b64encode(bytes(len(secret))).decode()
    try:
        standardwebhooks.Webhook(wrong).verify(body.encode(), {
            "webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature})
        raise SystemExit("the reference accepted a wrong secret")
    except standardwebhooks.webhooks.WebhookVerificationError:
        pass
    vectors.append({"secret": whsec, "id": msg_id, "timestamp": ts, "body": body,
                    "signature": signature, "wrong_secret": wrong})

(HERE / "webhooks.json").write_text(json.dumps(vectors, ensure_ascii=False, indent=1) + "\n")
print("webhooks.json written")

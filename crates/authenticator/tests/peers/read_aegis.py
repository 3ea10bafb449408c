"""Reads an Aegis vault (plain or encrypted) and prints its entries as JSON lines:
{"type","issuer","name","secret","algo","digits","period"|"counter"}.

usage: read_aegis.py FILE [PASSWORD]
"""
import base64, json, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

vault = json.load(open(sys.argv[1]))
assert vault["version"] == 1
header = vault["header"]
if header["slots"] is None:
    db = vault["db"]
else:
    password = sys.argv[2].encode()
    master = None
    for slot in header["slots"]:
        if slot["type"] != 1:
            continue
        kek = Scrypt(salt=bytes.fromhex(slot["salt"]), length=32, n=slot["n"], r=slot["r"], p=slot["p"]).derive(password)
        p = slot["key_params"]
        master = AESGCM(kek).decrypt(bytes.fromhex(p["nonce"]), bytes.fromhex(slot["key"]) + bytes.fromhex(p["tag"]), None)
        break
    params = header["params"]
    ct = base64.b64decode(vault["db"]) + bytes.fromhex(params["tag"])
    db = json.loads(AESGCM(master).decrypt(bytes.fromhex(params["nonce"]), ct, None))
for e in db["entries"]:
    out = {"type": e["type"], "issuer": e["issuer"], "name": e["name"]}
    out.update(e["info"])
    print(json.dumps(out, sort_keys=True))

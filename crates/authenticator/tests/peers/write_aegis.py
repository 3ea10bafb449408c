"""Writes an encrypted Aegis vault (version 1, one password slot) to stdout.

usage: write_aegis.py PASSWORD < entries.json
entries.json: a list of Aegis entries ({"type","uuid","name","issuer","info":{...}}).
Key derivation scrypt(N=2^15, r=8, p=1) -> AES-256-GCM wraps a random master key, which
encrypts the database with AES-256-GCM (tags stored apart from the ciphertexts, hex fields).
"""
import base64, json, os, sys, uuid
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

password = sys.argv[1].encode()
entries = json.load(sys.stdin)
db = json.dumps({"version": 2, "entries": entries, "groups": []}).encode()

master = AESGCM.generate_key(bit_length=256)
salt = os.urandom(32)
kek = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(password)
key_nonce = os.urandom(12)
wrapped = AESGCM(kek).encrypt(key_nonce, master, None)
db_nonce = os.urandom(12)
ct = AESGCM(master).encrypt(db_nonce, db, None)

vault = {
    "version": 1,
    "header": {
        "slots": [{
            "type": 1, "uuid": str(uuid.uuid4()),
            "key": wrapped[:-16].hex(),
            "key_params": {"nonce": key_nonce.hex(), "tag": wrapped[-16:].hex()},
            "n": 2**15, "r": 8, "p": 1, "salt": salt.hex(), "repaired": True,
        }],
        "params": {"nonce": db_nonce.hex(), "tag": ct[-16:].hex()},
    },
    "db": base64.b64encode(ct[:-16]).decode(),
}
json.dump(vault, sys.stdout)

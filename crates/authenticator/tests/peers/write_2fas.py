"""Writes an encrypted 2FAS backup (schemaVersion 4) to stdout.

usage: write_2fas.py PASSWORD < services.json
servicesEncrypted = b64(ciphertext||tag) ":" b64(salt) ":" b64(iv), AES-256-GCM under
PBKDF2-HMAC-SHA256(password, salt, 10000 iterations, 32 bytes).
"""
import base64, json, os, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

password = sys.argv[1].encode()
services = json.dumps(json.load(sys.stdin)).encode()
salt = os.urandom(256)
iv = os.urandom(12)
key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=10000).derive(password)
ct = AESGCM(key).encrypt(iv, services, None)
b = lambda x: base64.b64encode(x).decode()
json.dump({
    "services": [], "groups": [], "updatedAt": 0, "schemaVersion": 4,
    "appVersionCode": 5000000, "appVersionName": "5.0.0", "appOrigin": "android",
    "servicesEncrypted": f"{b(ct)}:{b(salt)}:{b(iv)}",
}, sys.stdout)

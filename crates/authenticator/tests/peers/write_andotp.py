"""Writes an encrypted andOTP backup to stdout (binary).

usage: write_andotp.py PASSWORD < entries.json
layout: iterations (uint32 big endian) || salt (12) || nonce (12) || AES-256-GCM(ct||tag),
key = PBKDF2-HMAC-SHA1(password, salt, iterations, 32 bytes).
"""
import json, os, struct, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

password = sys.argv[1].encode()
plain = json.dumps(json.load(sys.stdin)).encode()
iterations = 140000
salt = os.urandom(12)
nonce = os.urandom(12)
key = PBKDF2HMAC(algorithm=hashes.SHA1(), length=32, salt=salt, iterations=iterations).derive(password)
sys.stdout.buffer.write(struct.pack(">I", iterations) + salt + nonce + AESGCM(key).encrypt(nonce, plain, None))

"""``bio-platform rotate-keys``: a new KEK (key-file mode), then every sealed row and blob re-wrapped
under the current KEK (or re-encrypted), while the platform keeps running."""

from __future__ import annotations

import argparse
import sys

from bio_gateway.settings import GatewaySettings
from bio_shared import crypto
from bio_shared.key_rotation import rotate
from bio_shared.sealed import envelope_for, key_file_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("rotate-keys", help="re-wrap (or re-encrypt) every template, embedding and image "
                                           "under the current key-encryption key")
    r.add_argument("--new-key", action="store_true", help="first add a new KEK to the key file and make it current")
    r.add_argument("--reencrypt", action="store_true", help="new data keys and ciphertexts, not only re-wrapped keys")
    r.add_argument("--retire", action="store_true",
                   help="afterwards drop KEKs no value uses any more from the key file")


def run(args: argparse.Namespace, settings: GatewaySettings) -> None:
    path = key_file_path(settings)
    if args.new_key or args.retire:
        if settings.kek:
            sys.exit("rotate-keys: --new-key/--retire manage the key file; with BIO_KEK list the new key last "
                     "(id:base64,...) and run rotate-keys")
    if args.new_key:
        if not path.exists():
            envelope_for(settings)  # creates the development key file, or refuses outside development
        print(f"new key-encryption key {crypto.add_key(path)} is current")
    env = envelope_for(settings)
    report = rotate(settings, env, reencrypt=args.reencrypt)
    for name, n in sorted(report.rows.items()):
        print(f"{name}: {n} values re-written")
    for name, n in sorted(report.blobs.items()):
        print(f"{name} blobs: {n} re-written")
    print(f"plaintext values sealed: {report.legacy_sealed}; keys in use: {', '.join(sorted(report.key_ids_in_use))}")
    if args.retire:
        keks, current = crypto.load_key_file(path)
        keep = [k for k in keks if k.key_id == current or k.key_id in report.key_ids_in_use]
        crypto.write_key_file(path, keep, current)
        print(f"retired: {', '.join(k.key_id for k in keks if k not in keep) or 'none'}")

"""Command-line entry points of the fingerprint service."""

from bio_shared.cli import service_cli

from bio_fingerprint.app import SERVICE

main = service_cli(SERVICE)

if __name__ == "__main__":
    main()

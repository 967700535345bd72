"""Command-line entry points of the face verify service."""

from bio_shared.cli import service_cli

from bio_face_verify.app import SERVICE

main = service_cli(SERVICE)

if __name__ == "__main__":
    main()

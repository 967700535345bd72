"""Command-line entry points of the contour mask service."""

from bio_shared.cli import service_cli

from bio_contour_mask.app import SERVICE

main = service_cli(SERVICE)

if __name__ == "__main__":
    main()

"""Command-line entry points of the contour mask service: migrate, serve, worker, bench, evaluate."""

from bio_contour_mask.app import SERVICE
from bio_contour_mask.bench import add_bench
from bio_shared.cli import service_cli

main = service_cli(SERVICE, extra=add_bench)

if __name__ == "__main__":
    main(None)

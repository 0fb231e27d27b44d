"""`python -m bench` (`make bench`): every benchmark in turn, each module's `main()`."""

import importlib
import sys

MODULES = (
    "bench.devconsul_bench",
    "bench.gateway_bench",
    "bench.services_bench",
    "bench.system_bench",
    "bench.failover",
)


def main() -> int:
    failed = []
    for name in MODULES:
        print(f"\n=== {name} ===", flush=True)
        try:
            status = importlib.import_module(name).main()
        except Exception as exc:  # noqa: BLE001 - one failure must not hide the other figures
            print(f"ERROR bench: {name} failed: {exc!r}", flush=True)
            status = 1
        if status:
            failed.append(name)
    if failed:
        print(f"\nERROR bench: failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

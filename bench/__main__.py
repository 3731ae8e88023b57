"""python -m bench NAME [options]"""

import importlib
import sys

BENCHES = {"imports": "bench.imports", "console": "bench.console", "segments": "bench.segments", "handover": "bench.handover",
           "callbacks": "bench.callbacks", "chat": "bench.chat", "faults": "bench.faults",
           "payments": "bench.payments", "finance": "bench.finance", "cob": "bench.cob", "analytics": "bench.analytics",
           "postloan": "bench.postloan", "telephony": "bench.telephony",
           "backfill": "bench.backfill", "pages": "bench.pages"}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHES:
        raise SystemExit(f"usage: python -m bench {{{'|'.join(BENCHES)}}} [options]")
    importlib.import_module(BENCHES[sys.argv[1]]).main(sys.argv[2:])


main()

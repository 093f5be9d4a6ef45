"""Features: scale the raw columns into model inputs."""
import argparse

from common import emit, read_rows, write_rows

p = argparse.ArgumentParser()
p.add_argument("--date", required=True)
p.add_argument("--rows", type=int, required=True, help="rows the extract step reported")
p.add_argument("--raw", required=True, help="the extract step's CSV")
p.add_argument("--out", required=True, help="the CSV file to write")
a = p.parse_args()

raw = read_rows(a.raw)
if len(raw) != a.rows:
    raise SystemExit(f"extract reported {a.rows} rows but {len(raw)} are on disk")
feats = []
for r in raw:
    feats.append({
        "inv_sqrt_tenure": round(1 / int(r["tenure"]) ** 0.5, 6),
        "monthly_100": round(float(r["monthly"]) / 100, 6),
        "tickets": int(r["tickets"]),
        "churned": int(r["churned"]),
    })
path = a.out
write_rows(path, feats, ["inv_sqrt_tenure", "monthly_100", "tickets", "churned"])
print(f"wrote {len(feats)} feature rows to {path}")
emit(features=3)

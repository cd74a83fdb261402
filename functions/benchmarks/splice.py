"""Pastes each generated section (RESULTS/<name>.md) into BENCHMARKS.md between
`<!-- BEGIN name -->` and `<!-- END name -->`, and the run's duration between the
`run-time` markers (when given). Sections not regenerated in this run are left as they
were.

Usage: python3 splice.py BENCHMARKS.md RESULTS_DIR "12 min 3 s"
"""

import pathlib
import re
import sys


def main() -> None:
    doc_path, results, duration = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    doc = doc_path.read_text()
    sections = {p.stem: p.read_text().strip() for p in results.glob("*.md")}
    if duration:
        sections["run-time"] = duration
    for name, text in sections.items():
        pattern = re.compile(
            rf"(<!-- BEGIN {re.escape(name)} -->)(.*?)(<!-- END {re.escape(name)} -->)", re.S)
        if not pattern.search(doc):
            print(f"BENCHMARKS.md has no markers for {name!r}; skipped", file=sys.stderr)
            continue
        inline = name == "run-time"
        body = text if inline else f"\n{text}\n"
        doc = pattern.sub(lambda m: m.group(1) + body + m.group(3), doc)
    doc_path.write_text(doc)


if __name__ == "__main__":
    main()

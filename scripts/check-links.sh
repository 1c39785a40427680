#!/usr/bin/env bash
# Checks that every relative link in README.md, ARCHITECTURE.md and docs/**/*.md points at a
# file or directory that exists (links to the web and to anchors on the same page are skipped;
# an anchor on another file is checked for the file only). Links inside fenced code blocks are
# not links. Prints each broken link as FILE:LINE: TARGET and exits 1 when there is one.
#
#   bash scripts/check-links.sh [FILE.md ...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
    set -- README.md ARCHITECTURE.md $(find docs -name '*.md' | sort)
fi
python3 - "$@" <<'PY'
import os, re, sys

link = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
broken = 0
checked = 0
for path in sys.argv[1:]:
    base = os.path.dirname(path)
    fenced = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                continue
            # Inline code is not a link either.
            text = re.sub(r"`[^`]*`", "", line)
            for target in link.findall(text):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue
                checked += 1
                file = target.split("#", 1)[0]
                if not os.path.exists(os.path.normpath(os.path.join(base, file))):
                    print(f"{path}:{number}: {target}")
                    broken += 1
print(f"{checked} relative links checked, {broken} broken", file=sys.stderr)
sys.exit(1 if broken else 0)
PY

#!/usr/bin/env bash
# Refresh the SigmaHQ rules bundled in `levee hunt` (crates/levee-hunt/rules/sigmahq)
# from a SigmaHQ/sigma checkout or git directory: every rule whose logsource is a
# web server or a proxy (category webserver or proxy), from rules/,
# rules-emerging-threats/ and rules-threat-hunting/, with the Detection Rule
# License 1.1 (its text is kept beside them, LICENSE.Detection.Rules.md, from
# github.com/SigmaHQ/Detection-Rule-License) and a SNAPSHOT file naming the
# commit and its date. Rules under a web/ directory are taken too (web
# server products' own logs); levee hunt keeps the web ones. The rules
# keep their author fields; levee hunt reports each finding with its author.
#
# Usage: scripts/update-sigma-bundle.sh PATH_TO_SIGMA   (a checkout, or its .git)
set -euo pipefail
SRC=${1:?usage: scripts/update-sigma-bundle.sh PATH_TO_SIGMAHQ_SIGMA (a checkout or a git directory)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/crates/levee-hunt/rules/sigmahq"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if git --git-dir="$SRC" rev-parse HEAD >/dev/null 2>&1; then
    GIT=(git --git-dir="$SRC")
elif git -C "$SRC" rev-parse HEAD >/dev/null 2>&1; then
    GIT=(git -C "$SRC")
else
    echo "$SRC is not a git checkout of SigmaHQ/sigma" >&2
    exit 2
fi
"${GIT[@]}" archive HEAD LICENSE rules rules-emerging-threats rules-threat-hunting | tar -x -C "$WORK"
COMMIT=$("${GIT[@]}" log -1 --format=%H)
DATE=$("${GIT[@]}" log -1 --format=%cs)
rm -rf "$DEST/rules" "$DEST/rules-emerging-threats" "$DEST/rules-threat-hunting"
mkdir -p "$DEST"
n=0
while IFS= read -r f; do
    mkdir -p "$DEST/$(dirname "$f")"
    cp "$WORK/$f" "$DEST/$f"
    n=$((n + 1))
done < <(cd "$WORK" && { grep -rlE --include='*.yml' '^\s+category:\s*(webserver|proxy)\s*$' rules rules-emerging-threats rules-threat-hunting; find rules rules-emerging-threats rules-threat-hunting -path '*/web/*' -name '*.yml'; } | sort -u)
cp "$WORK/LICENSE" "$DEST/LICENSE"
printf 'commit %s\ndate %s\nrules %d\nsource https://github.com/SigmaHQ/sigma\n' "$COMMIT" "$DATE" "$n" > "$DEST/SNAPSHOT"
echo "bundled $n SigmaHQ web and proxy rules from $COMMIT ($DATE) into $DEST" >&2

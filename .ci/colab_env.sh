#!/usr/bin/env bash
# Build, or bring up to date, the venv of `make test-colab`: Colab's runtime (.ci/colab-constraints.txt), then what
# the notebooks' setup cells install on top of it, then the kit. Usage: .ci/colab_env.sh PYTHON VENV
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:?usage: .ci/colab_env.sh PYTHON VENV}
venv=${2:?usage: .ci/colab_env.sh PYTHON VENV}
constraints=.ci/colab-constraints.txt
stamp=$venv/.installed-colab
inputs=$(cat "$constraints" requirements.txt pyproject.toml .ci/colab_env.sh .ci/check_colab_versions.py | sha256sum)
if [[ -f $stamp && $(cat "$stamp") == "$inputs" ]]; then
    exit 0
fi
command -v "$python" >/dev/null || { echo "no $python here: give a Python 3.13, e.g. make test-colab PYTHON_COLAB=/path/to/python3.13" >&2; exit 2; }

# What Colab lacks: installed at the kit's pins and without Colab's constraints, as a setup cell's `pip install` does.
lacks='ultralytics|pillow-heif|nbval'
# Left out: jupyterlab (Colab has its own front end; the tests do not need it).
skip='torch|torchvision|jupyterlab'

# The rest of requirements.txt by name only, so each comes at Colab's version (its pins lose to Colab's here).
mapfile -t by_name < <(grep -v -E "^(#|$|($skip|$lacks)==)" requirements.txt | sed 's/[=<>~!;].*//')
mapfile -t at_kit_pins < <(grep -E "^($lacks)==" requirements.txt)

test -x "$venv/bin/python" || "$python" -m venv "$venv"
install=("$venv/bin/python" -m pip install --quiet)
"${install[@]}" -c "$constraints" torch torchvision
"${install[@]}" -c "$constraints" "${by_name[@]}"
"${install[@]}" "${at_kit_pins[@]}"
"${install[@]}" --no-deps --editable .
"$venv/bin/python" .ci/check_colab_versions.py "$constraints"
echo "$inputs" > "$stamp"

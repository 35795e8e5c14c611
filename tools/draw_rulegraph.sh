#!/usr/bin/env bash
# Redraws docs/rulegraph.dot and docs/rulegraph.svg, the README's picture of the workflow: one box
# per rule of the DAG (snakemake --rulegraph on the laptop recipe, whose Part A runs on the MNIST
# model whatever is in the Hugging Face cache), laid out by graphviz's dot.
# tests/test_docs.py fails when the committed .dot no longer matches the rules.
set -euo pipefail
cd "$(dirname "$0")/.."
snakemake=${SNAKEMAKE:-.venv/bin/snakemake}
empty=$(mktemp -d)  # an empty working directory: the graph does not depend on what has run here
trap 'rm -rf "$empty"' EXIT
"$snakemake" all -s "$PWD/Snakefile" --directory "$empty" --rulegraph --quiet --configfile "$PWD/config/laptop.yaml" > docs/rulegraph.dot.tmp
mv docs/rulegraph.dot.tmp docs/rulegraph.dot
dot -Tsvg docs/rulegraph.dot > docs/rulegraph.svg.tmp
mv docs/rulegraph.svg.tmp docs/rulegraph.svg
echo "wrote docs/rulegraph.dot and docs/rulegraph.svg"

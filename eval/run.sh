#!/bin/sh
# Reproduce eval/results.md: both public sets on the zero-configuration install (embedded index,
# offline answerer, hybrid retrieval with the offline embedding model, top 5), each in a fresh
# data directory. Usage: eval/run.sh OUT_DIR   (e.g. eval/run.sh /tmp/eval-run)
# Text retrieval (BM25) alone: EMBEDDINGS=none eval/run.sh OUT_DIR
# (evaluate's options, such as --mode vectors, can be added in EVAL_ARGS).
set -eu
out=${1:?usage: eval/run.sh OUT_DIR}
py=${PYTHON:-.venv/bin/python}
export OPENAI_HOST=local SEARCH_BACKEND=embedded CHAT_STREAM_DELAY_SECONDS=0
$py eval/build.py

# The public set: four long PDFs, 116 questions, asked as an anonymous visitor.
export RAGSITE_DATA_DIR="$out/data-eval"
rm -rf "$RAGSITE_DATA_DIR"
$py manage.py migrate -v0
$py manage.py ingest eval/docs -v0
$py manage.py sync_index -v0
$py manage.py evaluate eval/questions.jsonl --top 5 --by kind --no-progress ${EVAL_ARGS:-} \
    --out "$out/eval"

# The sample knowledge base's 92 questions, asked as its staff user (some are restricted).
export RAGSITE_DATA_DIR="$out/data-sample"
rm -rf "$RAGSITE_DATA_DIR"
$py manage.py migrate -v0
$py manage.py seed_demo -v0
$py manage.py sync_index -v0
$py manage.py evaluate eval/sample_kb.jsonl --top 5 --user admin --by kind --no-progress ${EVAL_ARGS:-} \
    --out "$out/sample_kb"
# 32 of them reworded as people ask them, sharing few words with the passages (written by hand).
$py manage.py evaluate eval/sample_kb_reworded.jsonl --top 5 --user admin --no-progress \
    ${EVAL_ARGS:-} --out "$out/sample_kb_reworded"

#!/bin/sh
# Regenerate the figures under results/ from the bundled paper data (Li et al., ICLR 2025):
# the 28-point visual-reasoning sweep and the product law fitted on it.
#
#     sh results/make_figures.sh
#
# Each figure is one real `scaling plot` command; SVG (and PDF) output is byte-identical
# from run to run, so regenerating leaves `git status` clean.
set -eu
cd "$(dirname "$0")/.."
LAW=results/li2025_visual_reasoning.law.json
DATA=sweeps/li2025_visual_reasoning.csv

for ext in png svg; do
    # Fig. 1 of the paper: error vs inference FLOPs per LLM size, the compute-optimal
    # frontier, and the planner's answer for 1 TFLOP per request with 50 text tokens.
    scaling plot frontier --law "$LAW" --data "$DATA" --text-tokens 50 --budget 1T \
        -o "results/frontier.$ext"
    # How the optimal visual-token count V* moves with the text tokens Q.
    scaling plot isoflop --law "$LAW" --text-tokens 0,50,200 --budget 3e11,1e12,3e12 \
        -o "results/isoflop.$ext"
done
scaling plot heatmap --law "$LAW" --data "$DATA" --text-tokens 50 --budget 1T \
    -o results/heatmap.png
scaling plot fit --law "$LAW" --data "$DATA" -o results/fit.png

#!/bin/bash
# infer-bench.sh: the end-to-end `zoo run TSM infer` over real videos,
# TSM-ResNet-50 8x224 (400 classes, Paddle's INFER reader: short side 256,
# centre crop 224, batch 1), with the three CPU kernel configurations of
# one binary alternated ROUNDS times (default 3): oneDNN off (ZOO_ONEDNN=off,
# im2col + OpenBLAS), oneDNN fp32, oneDNN bf16 (--set MODEL.precision=bf16).
# It prints the load average before and after, each run, and per
# configuration the medians of the process's total wall seconds and of
# TSM_infer_summary.json's pass seconds, decode_s, decode_wait_s,
# forward_s and clips_per_s (docs/performance.md, "End to end"). It builds
# nothing: run `make build` first, then, on an idle machine, from the
# repository root:
#
#   scripts/infer-bench.sh                       # every video in ../shared/data/videos
#   ROUNDS=5 scripts/infer-bench.sh a.mp4 b.avi  # these videos
#
# WEIGHTS is a TSM-R50 checkpoint with 400 classes; without it the script
# makes one (one training step of the built-in job at 8x224 with those
# MODEL keys: speed does not depend on the weights' values).
set -eu
ROUNDS=${ROUNDS:-3}
case $ROUNDS in
'' | 0 | *[!0-9]*) echo "infer-bench: ROUNDS=$ROUNDS: want a positive whole number" >&2; exit 2 ;;
esac
ZOO=${ZOO:-bin/zoo}
[ -x "$ZOO" ] || { echo "infer-bench: $ZOO is not an executable: run make build first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ZOO_HOME=${ZOO_HOME:-$work/home} ZOO_OFFLINE=1

list=$work/videos.list
if [ $# -gt 0 ]; then
	for v in "$@"; do
		[ -f "$v" ] || { echo "infer-bench: video $v does not exist" >&2; exit 1; }
		realpath "$v"
	done >"$list"
else
	[ -d ../shared/data/videos ] || { echo "infer-bench: no ../shared/data/videos here: give video files as arguments" >&2; exit 1; }
	find "$(realpath ../shared/data/videos)" -maxdepth 1 -type f | sort >"$list"
	[ -s "$list" ] || { echo "infer-bench: no videos in ../shared/data/videos: give video files as arguments" >&2; exit 1; }
fi
n=$(wc -l <"$list")

# Paddle's tsm.txt keys are the defaults: TSM-R50, 8 segments, 400
# classes, [INFER] short_size 256, target_size 224, batch_size 1.
config=$work/tsm-r50.txt
printf '[MODEL]\nname = "TSM"\n' >"$config"
model=(--set MODEL.num_layers=50 --set MODEL.base_width=64 --set MODEL.num_classes=400)
if [ -z "${WEIGHTS:-}" ]; then
	echo "making a TSM-R50 checkpoint (one training step, 8x224, 400 classes) $(date -u +%T)"
	"$ZOO" run TSM train --save_dir "$work/ckpt" --epoch 1 --valid_interval 0 --batch_size 1 "${model[@]}" \
		--set TRAIN.short_size=256 --set TRAIN.target_size=224 --set VALID.short_size=256 --set VALID.target_size=224 --set SYNTHETIC.train_videos=1 \
		--set TRAIN.total_videos=1 >/dev/null 2>"$work/train.err" ||
		{ tail -1 "$work/train.err" >&2; exit 1; }
	WEIGHTS=$work/ckpt/TSM_epoch0
fi

# field NAME FILE: a number of the summary (one field per line).
field() { sed -n "s/^ *\"$1\": *\([^,]*\),\{0,1\}$/\1/p" "$2"; }

configs=(onednn-off onednn-fp32 onednn-bf16)
run() { # configuration, round
	local env=() set=() out=$work/$1-$2
	case $1 in
	onednn-off) env=(ZOO_ONEDNN=off) ;;
	onednn-bf16) set=(--set MODEL.precision=bf16) ;;
	esac
	local t0 t1 wall
	t0=$(date +%s.%N)
	if ! env "${env[@]}" "$ZOO" run TSM infer --config "$config" --weights "$WEIGHTS" --filelist "$list" \
		--save_dir "$out" "${set[@]}" >"$out.log" 2>"$out.err"; then
		echo "infer-bench: $1 failed: $(tail -1 "$out.err")" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
	local s=$out/TSM_infer_summary.json
	[ -f "$s" ] || { echo "infer-bench: $1 wrote no $s" >&2; exit 1; }
	echo "$wall $(field seconds "$s") $(field decode_s "$s") $(field decode_wait_s "$s") $(field forward_s "$s") $(field clips_per_s "$s") $(field videos "$s")" >>"$work/$1.txt"
	printf '%-13s round %d: total %s s, load %s; %s\n' "$1" "$2" "$wall" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(grep '^\[INFER\] Finish' "$out.log")"
	rm -rf "$out"
}
median() { # column of a configuration's runs
	cut -d' ' -f"$2" "$work/$1.txt" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
}

echo "== infer-bench: $n videos, $ROUNDS rounds, weights $WEIGHTS; load before $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%T)"
for r in $(seq 1 "$ROUNDS"); do
	for c in "${configs[@]}"; do
		run "$c" "$r"
	done
done
echo "end load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%T)"
echo
echo "medians of $ROUNDS rounds, $n videos, each column on its own (decode_wait_s + forward_s <= pass_s holds in every run, not"
echo "necessarily between medians of different rounds); total: the zoo process (start, weights, graph, the pass); pass: the infer pass alone"
printf '%-13s %8s %8s %9s %14s %10s %13s %13s\n' configuration total_s pass_s decode_s decode_wait_s forward_s clips/s_pass clips/s_total
for c in "${configs[@]}"; do
	total=$(median "$c" 1)
	printf '%-13s %8.3f %8.3f %9.3f %14.3f %10.3f %13.3f %13.3f\n' "$c" "$total" "$(median "$c" 2)" "$(median "$c" 3)" \
		"$(median "$c" 4)" "$(median "$c" 5)" "$(median "$c" 6)" "$(awk -v n="$(median "$c" 7)" -v t="$total" 'BEGIN {print n / t}')"
done

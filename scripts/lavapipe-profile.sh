#!/usr/bin/env bash
# What lavapipe's JIT-compiled shaders spend their time on: samples a running headroom command
# with perf, dumps the JIT code of the live process with gdb, disassembles it with objdump, and
# sorts the samples into instruction classes (floating-point arithmetic, per-lane gathers and
# scatters, shuffles, integer addressing and bounds checks, loads and stores, ...).
#
#   scripts/lavapipe-profile.sh OUT COMMAND [ARG ...]
#
# Starts COMMAND, waits WARM seconds (default 4: model loading and shader compiling), samples it
# for SECS seconds (default 8) at 1999 Hz, then dumps the anonymous executable mappings (the
# JIT code) while the process still runs. COMMAND must run for at least WARM + SECS + a few
# seconds. Writes OUT/perf.data, OUT/jit.asm (every JIT instruction), OUT/hot.txt (samples per
# instruction address) and OUT/summary.txt (the classes, and the hottest instructions), and
# prints the summary.
#
# Debian's Mesa is a release build: GALLIVM_DEBUG and LP_DEBUG, which would print the generated
# code, are compiled out (only GALLIVM_PERF is read), hence this route. Needs perf, gdb and
# objdump (binutils), and permission to attach to the process (root, or ptrace_scope 0).
set -euo pipefail
out=${1:?usage: scripts/lavapipe-profile.sh OUT COMMAND [ARG ...]}
shift
[ $# -gt 0 ] || { echo "usage: scripts/lavapipe-profile.sh OUT COMMAND [ARG ...]" >&2; exit 2; }
for tool in perf gdb objdump; do
  command -v "$tool" >/dev/null || { echo "lavapipe-profile.sh: $tool is needed" >&2; exit 2; }
done
mkdir -p "$out"
"$@" >"$out/command.log" 2>&1 &
pid=$!
sleep "${WARM:-4}"
kill -0 "$pid" 2>/dev/null || { echo "lavapipe-profile.sh: the command ended within WARM seconds (see $out/command.log)" >&2; exit 2; }
perf record -q -F 1999 -p "$pid" -o "$out/perf.data" -- sleep "${SECS:-8}" 2>"$out/perf.err"
perf script -i "$out/perf.data" -F ip 2>/dev/null | awk '{print $1}' | sort | uniq -c |
  sort -rn >"$out/hot.txt"
segments=$(mktemp -d)
trap 'rm -rf "$segments"' EXIT
dumps=()
while read -r range perms _ _ inode _; do
  if [ "$perms" = "r-xp" ] && [ "$inode" = "0" ]; then
    dumps+=(-ex "dump binary memory $segments/${range%-*} 0x${range%-*} 0x${range#*-}")
  fi
done <"/proc/$pid/maps"
gdb -p "$pid" -batch "${dumps[@]}" >/dev/null 2>&1 ||
  { echo "lavapipe-profile.sh: gdb could not attach to $pid (ptrace permission?)" >&2; exit 2; }
for f in "$segments"/*; do
  objdump -D -b binary -mi386:x86-64 --adjust-vma="0x${f##*/}" "$f" | grep -E '^ +[0-9a-f]+:'
done >"$out/jit.asm"
wait "$pid" || echo "lavapipe-profile.sh: the command failed (see $out/command.log)" >&2

# objdump lines are "  addr:<TAB>bytes<TAB>mnemonic operands"; hot.txt lines "count ip"
awk '
NR == FNR {
  split($0, f, "\t"); a = f[1]; gsub(/[ :]/, "", a)
  if (f[3] != "") { split(f[3], w, " "); mn[a] = w[1]; text[a] = f[3] }
  next
}
{
  total += $1; ip = $2; sub(/^0+/, "", ip)
  if (!(ip in mn)) next
  jit += $1; x = mn[ip]; o = text[ip]; hot[ip] = $1
  if (x ~ /^v?fn?m(add|sub)/) k = "floating point: fused multiply-add"
  else if (x ~ /^v(mul|add|sub|div|max|min|sqrt|rcp14|rsqrt14)[sp][sd]$/) k = "floating point: other arithmetic"
  else if (x ~ /gather|scatter/) k = "hardware gathers and scatters"
  else if (x ~ /^(vpinsr|vinsertps|vpextr|vextractps|movslq|vmovd$|vmovq$)/) k = "per-lane inserts and extracts (software gathers and scatters)"
  else if (x ~ /^v?(p?unpck|vpunpck|perm|vperm|shuf|vshuf|blend|vblend|vpblend|vinsert[fi]|vextract[fi])/) k = "shuffles (vec4 texels to lanes and back)"
  else if (x ~ /^(vpcmp|vcmp|k|vptest)/) k = "compares and lane masks (bounds checks, control flow)"
  else if (x ~ /^v?p(add|sub|mul|sll|srl|sra|and|or|xor|andn|max|min|ternlog|broadcast|movsx|movzx)/) k = "vector integer (addressing, clamps)"
  else if (x ~ /mov/ && o ~ /\(/) k = "loads and stores"
  else if (x ~ /^(j|call|ret|push|pop)/) k = "control flow"
  else if (x ~ /^(mov|lea|add|sub|inc|dec|cmp|test|and|or|shl|sar|shr|imul|xor|not)/) k = "scalar integer"
  else k = "other"
  class[k] += $1
}
END {
  printf "%d samples, %.1f%% of them in JIT-compiled shader code\n\n", total, 100 * jit / total
  printf "share of the JIT samples by instruction class:\n"
  fflush()
  for (k in class) printf "%6.1f%%  %s\n", 100 * class[k] / jit, k | "sort -rn"
  close("sort -rn")
  printf "\nhottest instructions (share of the JIT samples):\n"
  fflush()
  for (ip in hot) printf "%6.2f%%  %s  %s\n", 100 * hot[ip] / jit, ip, text[ip] | "sort -rn | head -15"
}' "$out/jit.asm" "$out/hot.txt" | tee "$out/summary.txt"

# Helpers of the experiment scripts (scripts/cross-lingual.sh, scripts/objective-agreement.sh),
# sourced after they set $out, the run's output folder.

# a line with the time, on stdout and appended to $out/log.txt
log() { echo "[$(date +%T)] $*" | tee -a "$out/log.txt"; }

# sentences FROM..TO (0-based, end exclusive) of a CoNLL file
take() { awk -v RS= -v ORS='\n\n' -v a="$2" -v b="$3" 'NR>a && NR<=b' "$1"; }

# step DONE COMMAND...: runs COMMAND unless DONE (its output) exists; logs its wall time
step() {
  local done=$1
  shift
  if [ -e "$done" ]; then log "skip (exists): $done"; return; fi
  log "$*"
  local t0=$SECONDS
  "$@"
  log "done in $((SECONDS - t0)) s: $done"
}

#!/usr/bin/env bash
# Fills fuzz/corpus/TARGET/ with seeds: the repository's real files (the sample workspace of
# `kindlab init`, the built-in labs, the diagnose test corpus of real pull messages) and the
# hand-written answers in fuzz/seeds/. What the fuzzer adds there later stays (corpus/ is not
# committed). Plain POSIX tools only.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$fuzz_dir")"
corpus="$fuzz_dir/corpus"
workspace="$repo/templates/workspace"
testdata="$repo/src/diagnose/testdata"

seed() { # seed TARGET NAME < content
  mkdir -p "$corpus/$1"
  cat >"$corpus/$1/seed-$2"
}

for dir in "$fuzz_dir"/seeds/*/; do
  target="$(basename "$dir")"
  mkdir -p "$corpus/$target"
  cp "$dir"* "$corpus/$target/"
done

# kindlab.yaml
seed workspace_manifest sample <"$workspace/kindlab.yaml"

# Lab files.
for lab in "$repo"/labs/*.yaml; do
  seed lab_file "$(basename "$lab" .yaml)" <"$lab"
done

# What `kustomize build` prints: the sample's objects as one stream, and each file alone.
manifests=("$workspace"/deploy/base/orders-api/*.yaml "$workspace"/deploy/overlays/dev/*.yaml)
for f in "${manifests[@]}"; do
  seed kustomize_output "$(basename "$(dirname "$f")")-$(basename "$f" .yaml)" <"$f"
done
for f in "${manifests[@]}"; do printf -- '---\n'; cat "$f"; done | seed kustomize_output stream

# Kustomization files, as they are (the default images are then wanted).
for f in "$workspace"/deploy/overlays/dev/kustomization.yaml \
  "$workspace"/deploy/base/orders-api/kustomization.yaml \
  "$repo"/src/workspace/testdata/*.yaml; do
  seed kustomization_images "$(basename "$(dirname "$f")")-$(basename "$f" .yaml)" <"$f"
done

# Images: the ones the sample, the labs and the messages name.
{
  grep -rhoE 'image: *[^ ]+' "$workspace" "$repo"/labs/*.yaml | sed -E 's/image: *//; s/^"//; s/"$//'
  grep -hoE '(Failed to pull image|Back-off pulling image|failed to pull and unpack image) \\?"[^"\\]*' \
    "$testdata"/*.yaml | sed -E 's/.*"//'
} | sort -u | head -n 200 | while IFS= read -r image; do
  printf '%s' "$image" | seed image_reference "$(printf '%s' "$image" | cksum | cut -d' ' -f1)"
done

# Durations the labs set.
grep -hoE '(recoverWithin|within): *"?[0-9]+[smh]?' "$repo"/labs/*.yaml | sed -E 's/.*: *"?//' |
  sort -u | while IFS= read -r d; do printf '%s' "$d" | seed duration "lab-$d"; done

# Pull messages, one a file; and each test case as a failing pull (its messages, one a line,
# with the registry's answer and the node's platform when the case gives them).
mkdir -p "$corpus/pull_message" "$corpus/pull_failure"
awk -v corpus="$corpus" '
  function unquote(s,   q) {
    q = substr(s, 1, 1)
    s = substr(s, 2, length(s) - 2)
    if (q == "\047") { gsub(/\047\047/, "\047", s) } else { gsub(/\\"/, "\"", s); gsub(/\\n/, "\n", s) }
    return s
  }
  function message_done() {
    if (msg == "") return
    n++
    file = corpus "/pull_message/seed-" id "-" n
    printf "%s", msg > file; close(file)
    one_line = msg; gsub(/\n/, " ", one_line)
    case_text = case_text one_line "\n"
    msg = ""
  }
  function case_done() {
    message_done()
    if (id != "" && case_text != "") {
      file = corpus "/pull_failure/seed-" id
      printf "%s", case_text > file; close(file)
    }
    case_text = ""; n = 0; block = 0; in_messages = 0
  }
  /^- id: / { case_done(); id = $3; next }
  /^  messages:/ { in_messages = 1; next }
  /^  [a-z_]+:/ {
    message_done(); in_messages = 0; block = 0
    if ($1 == "registry:" || $1 == "node_platform:") { line = $0; sub(/^  /, "", line); case_text = case_text line "\n" }
    if ($1 == "pull_secrets:") { s = $0; sub(/.*\[/, "", s); sub(/\].*/, "", s); case_text = case_text "pull_secret: " s "\n" }
    next
  }
  in_messages && /^    - [|>]/ { message_done(); block = 1; next }
  in_messages && /^    - / { message_done(); block = 0; msg = unquote(substr($0, 7)); message_done(); next }
  in_messages && block && /^      / { line = substr($0, 7); msg = (msg == "" ? line : msg "\n" line); next }
  in_messages && block && /^$/ { msg = msg "\n"; next }
  END { case_done() }
' "$testdata"/pull-messages.yaml "$testdata"/heldout-pull-messages.yaml

for target in "$corpus"/*/; do
  printf '%-22s %5d inputs\n' "$(basename "$target")" "$(find "$target" -type f | wc -l)"
done

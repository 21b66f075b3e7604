#!/usr/bin/env bash
# Build this bundle's TensorRT engine ON THE DEVICE that will run it.
#
# TensorRT engines are specific to the GPU and the TensorRT version that built them, so the bundle ships the
# ONNX model and this script turns it into {{ENGINE_FILE}} with trtexec ({{PRECISION}}: {{TRTEXEC_FLAGS}}).
# Needs TensorRT {{TRT_RANGE}} (JetPack {{JETPACK}}). Then: python3 verify.py && python3 infer.py IMAGES...
#
# Environment: TRTEXEC=/path/to/trtexec (default: trtexec on PATH, then /usr/src/tensorrt/bin/trtexec),
#              MAX_BATCH=N (largest batch the engine accepts, default {{MAX_BATCH}}),
#              WORKSPACE_MB=N (builder workspace, default 1024).
set -euo pipefail

cd "$(dirname "$0")"

readonly MODEL="{{MODEL_FILE}}"
readonly MODEL_SHA256="{{MODEL_SHA256}}"
readonly ENGINE="{{ENGINE_FILE}}"
readonly PRECISION="{{PRECISION}}"
readonly INPUT="{{INPUT_NAME}}"
readonly HEIGHT={{HEIGHT}}
readonly WIDTH={{WIDTH}}
readonly DYNAMIC_BATCH={{DYNAMIC_BATCH}}
readonly TRT_MIN="{{TRT_MIN}}"
readonly TRT_BELOW="{{TRT_BELOW}}"
readonly JETPACK="{{JETPACK}}"
MAX_BATCH="${MAX_BATCH:-{{MAX_BATCH}}}"
WORKSPACE_MB="${WORKSPACE_MB:-1024}"
FLAGS=({{TRTEXEC_FLAGS}})

die() {
    echo "build_engine.sh: error: $*" >&2
    exit 1
}

find_trtexec() {
    if [[ -n "${TRTEXEC:-}" ]]; then
        [[ -x "$TRTEXEC" ]] || die "TRTEXEC=$TRTEXEC is not an executable file"
        echo "$TRTEXEC"
    elif command -v trtexec >/dev/null 2>&1; then
        command -v trtexec
    elif [[ -x /usr/src/tensorrt/bin/trtexec ]]; then
        echo /usr/src/tensorrt/bin/trtexec
    else
        die "trtexec not found (not on PATH, not at /usr/src/tensorrt/bin/trtexec).
  On a Jetson it comes with JetPack {{JETPACK}}: sudo apt install nvidia-jetpack (or the package tensorrt),
  or use the Dockerfile in this folder (base image {{BASE_IMAGE}}).
  Set TRTEXEC=/path/to/trtexec if it is elsewhere.
  Without an engine, infer.py and verify.py still run the ONNX model with onnxruntime on the CPU."
    fi
}

# "8.5.2" or "8.5.2.2" -> 80502; "10.3.0" -> 100300
version_number() {
    local major minor patch
    IFS=. read -r major minor patch _ <<<"$1"
    echo $(( 10#${major:-0} * 10000 + 10#${minor:-0} * 100 + 10#${patch:-0} ))
}

# TensorRT version: the Python bindings (what infer.py loads) or trtexec's banner ("[TensorRT v8502]").
tensorrt_version() {
    local trtexec="$1" version code
    if version=$(python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null) && [[ -n "$version" ]]; then
        echo "$version"
        return
    fi
    code=$("$trtexec" --help 2>&1 | sed -n 's/.*\[TensorRT v\([0-9]*\)\].*/\1/p' | head -n 1 || true)
    if [[ ${#code} -ge 6 ]]; then      # 10.x and later: MMmmpp
        echo "$(( 10#${code:0:${#code}-4} )).$(( 10#${code: -4:2} )).$(( 10#${code: -2} ))"
    elif [[ ${#code} -eq 4 ]]; then    # 8.x: Mmpp
        echo "${code:0:1}.${code:1:1}.$(( 10#${code:2:2} ))"
    fi
}

check_model() {
    [[ -f "$MODEL" ]] || die "$MODEL not found; run this script inside the unpacked bundle folder"
    local actual
    actual=$(sha256sum "$MODEL" | cut -d ' ' -f 1)
    [[ "$actual" == "$MODEL_SHA256" ]] || die "$MODEL does not match bundle.json (sha256 $actual, expected
  $MODEL_SHA256): the file is damaged or was replaced; restore the bundle from its archive"
}

check_version() {
    local version="$1"
    [[ -n "$version" ]] || die "cannot tell the TensorRT version; this bundle needs TensorRT $TRT_MIN or newer, below $TRT_BELOW"
    if (( $(version_number "$version") < $(version_number "$TRT_MIN") )) ||
        (( $(version_number "$version") >= $(version_number "$TRT_BELOW") )); then
        die "TensorRT $version is outside the range this bundle supports (>= $TRT_MIN, < $TRT_BELOW; JetPack $JETPACK).
  Upgrade JetPack (or use the Dockerfile in this folder), or rebuild the bundle with another opset/precision."
    fi
}

shape_flags() {
    if [[ "$DYNAMIC_BATCH" == 1 ]]; then
        echo "--minShapes=${INPUT}:1x${HEIGHT}x${WIDTH}x3"
        echo "--optShapes=${INPUT}:1x${HEIGHT}x${WIDTH}x3"
        echo "--maxShapes=${INPUT}:${MAX_BATCH}x${HEIGHT}x${WIDTH}x3"
    fi
}

main() {
    local trtexec version
    [[ "$MAX_BATCH" =~ ^[1-9][0-9]*$ ]] || die "MAX_BATCH must be a positive integer, got '$MAX_BATCH'"
    [[ "$WORKSPACE_MB" =~ ^[1-9][0-9]*$ ]] || die "WORKSPACE_MB must be a positive integer, got '$WORKSPACE_MB'"
    check_model
    trtexec=$(find_trtexec)
    version=$(tensorrt_version "$trtexec")
    check_version "$version"
    local shapes=()
    mapfile -t shapes < <(shape_flags)
    echo "building $ENGINE from $MODEL with $trtexec (TensorRT $version, $PRECISION: ${FLAGS[*]})"
    rm -f "$ENGINE.partial"
    "$trtexec" --onnx="$MODEL" --saveEngine="$ENGINE.partial" "${FLAGS[@]}" "${shapes[@]}" \
        --memPoolSize=workspace:"$WORKSPACE_MB" \
        || die "trtexec failed (see its log above); the ONNX fallback still works: python3 infer.py --runtime onnxruntime"
    mv -f "$ENGINE.partial" "$ENGINE"
    printf '{"engine": "%s", "model_sha256": "%s", "tensorrt": "%s", "precision": "%s", "max_batch": %s, "built": "%s"}\n' \
        "$ENGINE" "$MODEL_SHA256" "$version" "$PRECISION" "$MAX_BATCH" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >engine.json
    echo "wrote $ENGINE and engine.json; now run: python3 verify.py"
}

main "$@"

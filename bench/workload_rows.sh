# The table rows of bench/profile_table.sh and bench/gpu_table.sh, sourced by both: each row is a
# bench-step workload on its shipped config, or a variant of one.
# shellcheck shell=bash
ALL_ROWS=(unet-train ddim-sample dmd2-update fvgen-update generate3d-asd-hash generate3d-sds-hash generate3d-asd-voxel)

# row_args NAME ROW: sets the array `args` to ROW's bench-step flags; NAME prefixes the errors.
# fvgen-update needs FVGEN_SCENES=DIR with DIR/train.safetensors and DIR/test.safetensors.
row_args() {
  case "$2" in
    unet-train | ddim-sample | dmd2-update) args=(--workload "$2") ;;
    fvgen-update)
      [ -f "${FVGEN_SCENES:-}/train.safetensors" ] || { echo "$1: set FVGEN_SCENES (see the header)" >&2; exit 2; }
      args=(--workload fvgen-update --set "data.train=\"$FVGEN_SCENES/train.safetensors\""
            --set "data.preview=\"$FVGEN_SCENES/test.safetensors\"") ;;
    generate3d-asd-hash) args=(--workload generate3d) ;;
    generate3d-sds-hash) args=(--workload generate3d --set 'generate3d.method="sds"') ;;
    generate3d-asd-voxel) args=(--workload generate3d --set 'field.kind="voxel"') ;;
    *) echo "$1: unknown row $2 (rows: ${ALL_ROWS[*]})" >&2; exit 2 ;;
  esac
}

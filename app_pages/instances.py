"""Forget instances: pick training images in a gallery and forget exactly those with instance-wise
unlearning ("Learning to Unlearn", Cha et al.), comparing its three variants."""

import numpy as np
import streamlit as st

from ui.style import preload_charts

st.title("Forget chosen images")
st.markdown(
    "Pick a few training images and make the model forget them — using **only the model and those images**, "
    "no retain data. *naive* pushes each image away from its label; *adv* also trains on adversarial "
    "examples and on nearby copies kept at their class, which stand in for the rest of the data; *adv+imp* also anchors the "
    "weights that do not matter "
    "for the chosen images. Training stops as soon as every chosen image is misclassified."
)
preload = preload_charts()

import torch

from ssd_core.data import ForgetRequest, make_split, parse_indices
from ssd_core.errors import InputError
from ssd_core.indices import format_indices
from ssd_core.methods.l2ul import MAX_FORGET, VARIANTS
from ui import layout, method_runs, sidebar
from ui import state as lab_state
from ui.errors import guard, show_error
from ui.live import metric_delta
from ui.theme import presentation_on
from unlearning_lab import figures_compare as figs
from unlearning_lab.text import plain

PER_PAGE = 40
COLUMNS = 8
K_PICKED = "inst_picked"  # list of training indices picked on this page
K_PAGE = "inst_page"
K_K = "inst_random_k"
K_TEXT = "inst_indices_text"
K_VARIANTS = "inst_variants"
K_RESULTS = "_inst_results"
K_APPLIED = "_inst_applied"

setup = sidebar.run_setup()
prepared = layout.prepared_or_hint(setup, "Finish the run setup in the sidebar (dataset and model) first.")
preload.empty()


def picked() -> list[int]:
    return list(st.session_state.setdefault(K_PICKED, []))


def _toggle(index: int) -> None:
    chosen = set(picked())
    if st.session_state.get(f"inst_cb_{index}"):
        chosen.add(index)
    else:
        chosen.discard(index)
    st.session_state[K_PICKED] = sorted(chosen)


def _random_k(n_train: int, seed: int) -> None:
    k = int(lab_state.kept(K_K, 8))
    generator = torch.Generator().manual_seed(seed + len(st.session_state.get(K_RESULTS, {})))
    st.session_state[K_PICKED] = sorted(torch.randperm(n_train, generator=generator)[:k].tolist())


K_TEXT_ERROR = "_inst_text_error"


def _from_text(n_train: int) -> None:
    """Pick the typed indices (at most MAX_FORGET, inside the training set); say what was wrong."""
    st.session_state.pop(K_TEXT_ERROR, None)
    try:
        values = parse_indices(str(lab_state.kept(K_TEXT, "")), limit=max(MAX_FORGET, n_train))
    except InputError as exc:
        st.session_state[K_PICKED] = []
        st.session_state[K_TEXT_ERROR] = str(exc)
        return
    inside = sorted(i for i in values if i < n_train)
    if len(inside) < len(values):
        st.session_state[K_TEXT_ERROR] = (f"{len(values) - len(inside)} of the indices are past the end of the "
                                          f"training set (0 to {n_train - 1}) and were left out.")
    elif len(inside) > MAX_FORGET:
        st.session_state[K_TEXT_ERROR] = f"Only the first {MAX_FORGET} indices were picked (the most this method handles)."
    st.session_state[K_PICKED] = inside[:MAX_FORGET]


def _to_sidebar() -> None:
    lab_state.update(forget_kind="indices", forget_indices=format_indices(picked()))
    st.session_state[K_APPLIED] = True


def thumbnail(image: np.ndarray, size: int = 64) -> np.ndarray:
    """(C,H,W) uint8 -> (size', size', C) uint8, upscaled by pixel repetition (sharp pixels)."""
    img = np.asarray(image)
    scale = max(1, size // img.shape[1])
    img = img.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)
    return img[..., 0] if img.shape[2] == 1 else img


def gallery(prepared) -> None:
    dataset = prepared.dataset
    n_train = len(dataset.train_y)
    pages = (n_train + PER_PAGE - 1) // PER_PAGE
    chosen = set(picked())
    c1, c2, c3, c4 = st.columns([1.2, 1.2, 2.4, 1.2], vertical_alignment="bottom")
    if not 1 <= int(lab_state.kept(K_PAGE, 1)) <= pages:
        lab_state.set_kept(K_PAGE, 1)
    page = int(c1.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, **lab_state.keep(K_PAGE, 1)))
    k_max = min(MAX_FORGET, n_train - 1)
    if not 1 <= int(lab_state.kept(K_K, 8)) <= k_max:
        lab_state.set_kept(K_K, min(8, k_max))
    c2.number_input("k", min_value=1, max_value=k_max, step=1, **lab_state.keep(K_K, 8))
    c3.button("Pick k random images", on_click=_random_k, args=(n_train, int(prepared.setup.seed)), key="inst_random")
    c4.button("Clear", on_click=lambda: st.session_state.update({K_PICKED: []}), key="inst_clear")
    st.text_input("…or type training indices", placeholder="e.g. 0, 5, 17-20", help=f"Up to {MAX_FORGET} images.",
                  **lab_state.keep(K_TEXT, "", then=lambda: _from_text(n_train)))
    if st.session_state.get(K_TEXT_ERROR):
        st.warning(plain(st.session_state[K_TEXT_ERROR], None), icon=":material/warning:")

    start = (page - 1) * PER_PAGE
    indices = list(range(start, min(start + PER_PAGE, n_train)))
    columns = COLUMNS // 2 if presentation_on() else COLUMNS  # projector type: fewer, wider tiles ("forget" whole)
    for row in range(0, len(indices), columns):
        cols = st.columns(columns)
        for col, index in zip(cols, indices[row : row + columns]):
            label = dataset.classes[int(dataset.train_y[index])]
            tile = col.container(border=True)  # the image and its own checkbox, framed together
            tile.image(thumbnail(dataset.train_x[index].numpy()), caption=plain(f"#{index} · {label}", None),
                       width=64)  # class names come from uploads: text, never Markdown
            st.session_state[f"inst_cb_{index}"] = index in chosen
            tile.checkbox("forget", key=f"inst_cb_{index}", on_change=_toggle, args=(index,))


def result_key(prepared, indices: tuple[int, ...], values: dict) -> tuple:
    """What an l2ul result depends on: the original model (dataset, model, seed, device), the images, the config."""
    return (prepared.setup.model_key(), str(prepared.device), indices,
            tuple(sorted((k, repr(v)) for k, v in values.items())))


def run_variants(prepared, indices: tuple[int, ...], variants: list[str], config: dict) -> dict:
    split = make_split(prepared.dataset, ForgetRequest("indices", indices=indices))
    store = st.session_state.setdefault(K_RESULTS, {})
    out = {}
    for variant in variants:
        values = {**config, "variant": variant}
        key = result_key(prepared, indices, values)
        if key not in store:
            with layout.working(f"Unlearning {len(indices)} images with {variant}…", failed=f"{variant} failed") as work:
                store[key] = method_runs.run_on_split(prepared, split, "l2ul", values, work.progress,
                                                  on_wait=work.waiting)
                work.done(f"{variant} done in {store[key].total_seconds:.1f} s")
            while len(store) > 12:
                store.pop(next(iter(store)))
        out[variant] = store[key]
    return out


def show_results(prepared, indices: tuple[int, ...], runs: dict) -> None:
    ds = prepared.dataset
    cols = st.columns(len(runs) + 1)
    cols[0].metric("Test accuracy before", f"{100 * prepared.before_eval.test_acc:.1f}%")
    for col, (variant, run) in zip(cols[1:], runs.items()):
        d = run.diagnostics
        col.metric(f"{variant}: test accuracy after", f"{100 * run.evaluation.test_acc:.1f}%",
                   **metric_delta(prepared.before_eval.test_acc, run.evaluation.test_acc))  # as on Unlearn's cards
        col.caption(f"{d.get('n_forgotten')}/{d.get('n_forget')} forgotten in {d.get('steps')} steps "
                    f"({run.total_seconds:.1f} s)" + ("" if d.get("all_forgotten") else " — step cap reached"))
    first = next(iter(runs.values())).diagnostics["instances"]
    rows = []
    for i, inst in enumerate(first):
        row = {"index": inst["index"], "label": ds.classes[inst["label"]], "before": ds.classes[inst["before"]]}
        for variant, run in runs.items():
            after = run.diagnostics["instances"][i]["after"]
            row[f"{variant}: after"] = ds.classes[after]
            row[f"{variant}: forgotten"] = after != inst["label"]
        rows.append(row)
    import pandas as pd

    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, key="inst_table")
    stem = f"instances-{prepared.setup.dataset}-{prepared.setup.model}-{len(indices)}"
    st.download_button("Per-image results (CSV)", table.to_csv(index=False), f"{stem}.csv", "text/csv",
                       icon=":material/download:")
    n = min(12, len(first))
    idx = torch.tensor([inst["index"] for inst in first[:n]])
    preds = {"original": [inst["before"] for inst in first[:n]]}
    preds.update({v: [r.diagnostics["instances"][i]["after"] for i in range(n)] for v, r in runs.items()})
    method_runs.show_figure(figs.instance_grid_figure(ds.train_x[idx].numpy(), ds.train_y[idx].tolist(), preds, ds.classes,
                                                  idx.tolist()), "instances", stem, key="inst-grid")


if prepared is not None:
    layout.model_card(prepared)
    if st.session_state.pop(K_APPLIED, False):
        st.success("The sidebar now forgets these picked samples (\"picked samples\"); other pages use them too.",
                   icon=":material/check:")
    dataset = prepared.dataset
    st.subheader("1. Pick images")
    with guard("drawing the gallery"):
        gallery(prepared)
    chosen = picked()
    st.caption(f"Picked {len(chosen)}: {', '.join(map(str, chosen[:40]))}{' …' if len(chosen) > 40 else ''}"
               if chosen else "Nothing picked yet: tick images above or pick k at random.")
    st.button("Use as the sidebar's picked samples", on_click=_to_sidebar, disabled=not chosen, key="inst_to_sidebar",
              help="Sets the sidebar's forget request to these training indices, so the other pages "
                   "(Unlearn, Compare…) forget them too.")

    st.subheader("2. Unlearn them")
    variants = st.multiselect("Variants", list(VARIANTS), **lab_state.keep(K_VARIANTS, list(VARIANTS), valid=list(VARIANTS)))
    with st.expander("l2ul settings"):
        config = method_runs.settings_controls("l2ul", prepared.setup.seed, prefix="inst_cfg", skip=("variant",))
    config.pop("variant", None)
    clicked = st.button("Unlearn the picked images", type="primary", key="inst_run",
                        disabled=not chosen or not variants or len(chosen) > MAX_FORGET)
    if len(chosen) > MAX_FORGET:
        st.warning(f"Instance-wise unlearning handles up to {MAX_FORGET} images.")
    if chosen and variants:
        indices = tuple(chosen)
        try:
            store = st.session_state.get(K_RESULTS, {})
            if clicked or store:
                runs = run_variants(prepared, indices, variants, config) if clicked else None
                if runs is None:  # re-render: show only what is already computed for this choice
                    runs = {}
                    for v in variants:
                        values = {**config, "variant": v}
                        key = result_key(prepared, indices, values)
                        if key in store:
                            runs[v] = store[key]
                if runs:
                    st.subheader("3. Result per image")
                    show_results(prepared, indices, runs)
        except Exception as exc:  # noqa: BLE001
            show_error(exc, "unlearning the picked images")

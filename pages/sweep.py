"""Alpha sweep: forget and retain accuracy across the whole alpha range, to find a good alpha fast."""

import streamlit as st

from ui import layout, sidebar
from ui.errors import guard
from ui.state import K_ALPHA, K_LAMBDA, LAMBDA_MAX, LAMBDA_MIN, LAMBDA_STEP, snap_alpha
from ui.sweep import alpha_sweep, recommend_alpha, sweep_figure, sweep_table

st.title("Alpha sweep")
st.markdown(
    "α is the one knob SSD is sensitive to. This page dampens the model at every α on the ladder "
    "(with the cached importances) and plots what is forgotten and what is kept, so a good α is easy to spot."
)

setup = sidebar.run_setup()
if setup is None:
    st.info("Finish the run setup in the sidebar to see results.", icon=":material/arrow_back:")
else:
    prepared = layout.prepare_with_status(setup)
    if prepared is not None:
        layout.model_card(prepared)
        st.session_state.setdefault(K_LAMBDA, 1.0)
        lam = st.slider("λ — dampening strength", min_value=LAMBDA_MIN, max_value=LAMBDA_MAX, step=LAMBDA_STEP,
                        key=K_LAMBDA, persist_state="session")
        with guard("sweeping alpha"):
            bar = st.progress(0.0, text="sweeping α")
            rows = alpha_sweep(prepared, float(lam), progress=lambda f, m: bar.progress(f, text=m))
            bar.empty()
            current = st.session_state.get(K_ALPHA)
            st.plotly_chart(sweep_figure(prepared, rows, current), key="chart-alpha-sweep", theme=None,
                            config={"displaylogo": False,
                                    "toImageButtonOptions": {"format": "png", "scale": 3,
                                                             "filename": f"{setup.slug()}-l{lam:g}-alpha-sweep"}})
            with st.expander("What does this show?"):
                st.write(
                    "Each point is the unlearned model at one α (log scale) with the current λ. Low α dampens many "
                    "parameters: the forget accuracy (red) falls, but so does the retain accuracy (blue). High α "
                    "dampens almost nothing and forgets nothing. A good α sits where the red line is low and the "
                    "blue line is still at its original height."
                )
            best = recommend_alpha(prepared, rows)
            if best is not None:
                c1, c2 = st.columns([4, 1], vertical_alignment="center")
                c1.success(
                    f"Suggested α = {best['alpha']:g}: forget accuracy {100 * best['forget_acc']:.1f}%, retain-test "
                    f"accuracy {100 * best['retain_acc']:.1f}% (the highest α with the lowest forget accuracy that "
                    "keeps retain-test accuracy within 2 points of the original).",
                    icon=":material/lightbulb:",
                )

                def use_alpha(value: float = best["alpha"]) -> None:
                    st.session_state[K_ALPHA] = snap_alpha(value)

                if c2.button("Use this α", on_click=use_alpha, icon=":material/check:", width="stretch"):
                    st.switch_page("pages/unlearn.py")
            st.dataframe(sweep_table(rows), hide_index=True, width="stretch")

"""How SSD works: the idea, the two formulas, and how to read each view."""

import streamlit as st

st.title("How Selective Synaptic Dampening works")
st.markdown(
    r"""
A trained network stores what it knows spread over its parameters. **Selective Synaptic Dampening**
(Foster, Schoepf & Brintrup, AAAI 2024) forgets a part of the training data (the *forget set*)
without retraining, in two steps.

**1. Measure importance.** For every parameter $\theta_i$ it estimates how much the loss depends on it,
once over all training data ($I_{D,i}$) and once over the forget set ($I_{f,i}$), using the diagonal of
the Fisher information: squared gradients of the loss, averaged over mini-batches. $I_D$ depends only on
the model and the data, so it is computed once and cached; each new forget request costs one pass over
the forget set.

**2. Dampen the specialists.** A parameter is *selected* when it matters far more to the forget set than
to the data as a whole,

$$I_{f,i} > \alpha \, I_{D,i},$$

and each selected parameter is multiplied by

$$\beta_i = \min\!\left(\lambda \, \frac{I_{D,i}}{I_{f,i}},\; 1\right).$$

Higher **α** selects fewer, more specialised parameters; smaller **λ** shrinks them harder. The paper uses
λ = 1 and α = 10 for ResNet-like CNNs (5 for vision transformers); α is sensitive, which is why the
dashboard makes it a live slider and has a **Landscape** page (alpha x lambda sweep).

**Loss-free SSD (LFSSD)** replaces the loss by the squared norm of the network's output, so it needs no
labels; its importances are on a different scale and it wants a smaller α.
"""
)

st.subheader("Reading the views")
st.markdown(
    """
- **Accuracy shifts**: what the model still gets right on the forget and the retain data, per class, and
  the confusion matrices. Good unlearning: forget accuracy falls, retain accuracy stays.
- **Importance ratios**: where $\\log_{10}(I_f/I_D)$ lies per layer, and the $\\log_{10}\\alpha$ line above
  which parameters are dampened. Moving α moves the line.
- **Dampened weights**: every weight before vs after, and for conv layers which filters were shrunk.
- **Saliency maps**: which pixels the model uses for a class, before and after (Saliency, Integrated
  Gradients, SmoothGrad, Grad-CAM via captum).
- **Forgetting signal**: per-sample loss and entropy on forget, retain and test images, which is what a
  membership-inference attack (MIA) looks at. After unlearning, forget images should look like test
  images, not like training images.
- **Export**: metrics (CSV/JSON), the unlearned model (safetensors + config), every figure as PNG/SVG
  and in one HTML file, or everything as a zip.
"""
)
st.subheader("Tips")
st.markdown(
    """
- Click the α slider and use the ← → keys to step through its log-spaced values.
- The camera icon on each chart saves it as PNG (3× resolution) or SVG; pick which in the Export tab.
- Nothing you do changes the original model: every session dampens its own copy.
"""
)

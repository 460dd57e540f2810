"""Activation names for `BertEncoderConfig.hidden_activation`.

The Model Garden's `'gelu'` is the tanh approximation of GELU
(`official.modeling.activations.gelu`; transformers calls it `gelu_new`).
BERTs trained elsewhere often use the exact, erf-based GELU (transformers'
`gelu`, e.g. all-MiniLM-L6-v2), which no Model Garden activation name gives:
`get_activation` maps `'gelu'` to the approximation before Keras is asked.
Importing this module registers the exact form as `GELU_EXACT`, a name
`official.modeling.tf_utils.get_activation` resolves through Keras' registry
(it lower-cases names, hence the lower-case package).
"""

import tensorflow as tf
import tf_keras

GELU_EXACT = 'token_drop>gelu_exact'


@tf_keras.utils.register_keras_serializable(package='token_drop')
def gelu_exact(x: tf.Tensor) -> tf.Tensor:
  """GELU with the Gaussian CDF computed by erf (Hendrycks & Gimpel 2016).

  Args:
    x: a float tensor of any shape.

  Returns:
    `x * Phi(x)`, same shape and dtype.
  """
  return tf_keras.activations.gelu(x, approximate=False)

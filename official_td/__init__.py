"""Token dropping for efficient BERT pretraining, on the TF Model Garden."""

import os

# The Model Garden is built on Keras 2 (tf_keras): make tf.keras and
# tensorflow_hub resolve to it too. Must happen before TensorFlow is imported.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

# With TF 2.20 on Python 3.11, wrapt's C proxies make typing_extensions'
# runtime-protocol checks raise TypeError on TensorFlow's tracked dicts, which
# breaks saving Keras models with dict inputs (SavedModel export). The pure
# Python proxies do not (wrapt issue #231). Must happen before wrapt is
# imported, i.e. before TensorFlow.
os.environ.setdefault('WRAPT_DISABLE_EXTENSIONS', '1')

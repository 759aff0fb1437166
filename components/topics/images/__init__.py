"""Image classification: Keras networks on handwritten digits (scikit-learn's 8x8 digits, MNIST).

``classifier`` holds what the two topics share (input scaling, training, evaluation against a
random forest); each topic module is its network.
"""

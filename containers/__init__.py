"""The project's container image: Dockerfiles beside this package and the SageMaker entrypoint."""

"""AWS run targets (S3 staging, IAM, ECR, SageMaker, EC2); imported only when a user asks for one."""

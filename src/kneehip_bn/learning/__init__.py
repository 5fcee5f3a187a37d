"""kneehip_bn.learning."""

"""kneehip_bn._util."""

"""Caffe networks without pycaffe: the generated protobuf classes (:mod:`.caffe_pb2`, from the
vendored BVLC ``caffe.proto``) and model-file I/O (:mod:`.io`)."""

package rotation_test

import "crypto/rsa"

type rsaPublicKey = rsa.PublicKey

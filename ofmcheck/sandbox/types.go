package sandbox

import "crypto/rsa"

type rsaPublicKey = rsa.PublicKey

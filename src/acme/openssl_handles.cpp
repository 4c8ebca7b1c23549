// OpenSSL helpers shared by the ACME building blocks: dNSName lists and SHA-256.
// Internal to src/acme; pure: no I/O.
#include "acme/openssl_handles.hpp"

#include <openssl/sha.h>

namespace mles::acme::openssl {

general_names_ptr dns_names(const std::string* first, const std::string* last) {
  general_names_ptr names(sk_GENERAL_NAME_new_null());
  if (!names) return nullptr;
  for (; first != last; ++first) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (name == nullptr) return nullptr;
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    if (text == nullptr || first->size() > static_cast<std::size_t>(INT32_MAX) ||
        ASN1_STRING_set(text, first->data(), static_cast<int>(first->size())) != 1) {
      ASN1_IA5STRING_free(text);
      GENERAL_NAME_free(name);
      return nullptr;
    }
    GENERAL_NAME_set0_value(name, GEN_DNS, text);
    if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
      GENERAL_NAME_free(name);
      return nullptr;
    }
  }
  return names;
}

std::string sha256(std::string_view bytes) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), reinterpret_cast<unsigned char*>(digest.data()), &size,
                 EVP_sha256(), nullptr) != 1 ||
      size != SHA256_DIGEST_LENGTH) {
    return {};
  }
  return digest;
}

}  // namespace mles::acme::openssl

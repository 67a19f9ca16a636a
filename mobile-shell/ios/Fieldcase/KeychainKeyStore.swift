// The store's 32-byte root secret in the iOS Keychain: created once at random, readable only
// while the phone is unlocked, never migrated to another device or backup
// (kSecAttrAccessibleWhenUnlockedThisDeviceOnly), and only after the worker proved she is there
// (access control .userPresence: Face ID, Touch ID or the passcode; the system shows the prompt).
// A prompt she cancels is AuthenticationRequired. destroyKey() deletes it, so a wiped store can
// never be opened again, not even from a copy.
import Foundation
import Security

final class KeychainKeyStore: KeyStore {
    private let account = "fieldcase-root"
    private let service = "org.fieldcase.ios"

    private var query: [String: Any] {
        [kSecClass as String: kSecClassGenericPassword,
         kSecAttrService as String: service,
         kSecAttrAccount as String: account]
    }

    func rootKey() throws -> Data {
        var q = query
        q[kSecReturnData as String] = true
        var item: CFTypeRef?
        switch SecItemCopyMatching(q as CFDictionary, &item) {
        case errSecSuccess:
            guard let data = item as? Data, data.count == 32 else {
                throw KeyStoreError.Unavailable(detail: "keychain item damaged")
            }
            return data
        case errSecItemNotFound:
            return try create()
        case errSecUserCanceled, errSecAuthFailed, errSecInteractionNotAllowed:
            throw KeyStoreError.AuthenticationRequired
        case let status:
            throw KeyStoreError.Unavailable(detail: "keychain status \(status)")
        }
    }

    private func create() throws -> Data {
        var bytes = [UInt8](repeating: 0, count: 32)
        guard SecRandomCopyBytes(kSecRandomDefault, bytes.count, &bytes) == errSecSuccess else {
            throw KeyStoreError.Unavailable(detail: "no randomness")
        }
        let data = Data(bytes)
        var add = query
        add[kSecValueData as String] = data
        var failure: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, .userPresence, &failure
        ) else {
            throw KeyStoreError.Unavailable(detail: "no access control")
        }
        add[kSecAttrAccessControl as String] = access
        let status = SecItemAdd(add as CFDictionary, nil)
        guard status == errSecSuccess else {
            throw KeyStoreError.Unavailable(detail: "keychain status \(status)")
        }
        return data
    }

    func destroyKey() throws {
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw KeyStoreError.Unavailable(detail: "keychain status \(status)")
        }
    }
}

// The store's root secret, held by the Android Keystore.
//
// The Keystore does not hand out raw key material, so the 32-byte root secret that Rust needs is
// generated once at random and kept in the app's private files only as AES-256-GCM ciphertext
// under a non-exportable Keystore key (hardware-backed where the phone has it). rootKey() decrypts
// it on each unlock; destroyKey() deletes the Keystore key and the ciphertext, so a wiped store can
// never be opened again even from a copy.
package org.fieldcase.android

import android.content.Context
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.UserNotAuthenticatedException
import java.io.File
import java.security.KeyStore as JcaKeyStore
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import org.fieldcase.ffi.KeyStore
import org.fieldcase.ffi.KeyStoreException

class AndroidKeystoreKeyStore(context: Context) : KeyStore {
    private val wrapped = File(context.noBackupFilesDir, "fieldcase-root.bin")

    private fun keystore(): JcaKeyStore = JcaKeyStore.getInstance(PROVIDER).apply { load(null) }

    private fun wrappingKey(create: Boolean): SecretKey? {
        (keystore().getKey(ALIAS, null) as? SecretKey)?.let { return it }
        if (!create) return null
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER)
        // Usable only for a few minutes after the worker authenticated to the phone (screen lock
        // or strong biometrics), and never while the phone is locked (docs/adr/0004).
        val spec = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .setUserAuthenticationRequired(true)
            .setUnlockedDeviceRequired(true)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            spec.setUserAuthenticationParameters(
                AUTH_VALIDITY_SECONDS,
                KeyProperties.AUTH_DEVICE_CREDENTIAL or KeyProperties.AUTH_BIOMETRIC_STRONG,
            )
        } else {
            @Suppress("DEPRECATION")
            spec.setUserAuthenticationValidityDurationSeconds(AUTH_VALIDITY_SECONDS)
        }
        generator.init(spec.build())
        return generator.generateKey()
    }

    override fun rootKey(): ByteArray = try {
        if (!wrapped.exists()) create() else unwrap()
    } catch (e: KeyStoreException) {
        throw e
    } catch (e: UserNotAuthenticatedException) {
        // The app shows the screen-lock prompt, then unlocks again.
        throw KeyStoreException.AuthenticationRequired()
    } catch (e: Exception) {
        // The platform's message names the failure (locked screen, invalidated key), never the key.
        throw KeyStoreException.Unavailable(e.javaClass.simpleName)
    }

    private fun create(): ByteArray {
        val secret = ByteArray(32).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, wrappingKey(create = true))
        val sealed = cipher.iv + cipher.doFinal(secret)
        val tmp = File(wrapped.path + ".tmp")
        tmp.writeBytes(sealed)
        if (!tmp.renameTo(wrapped)) throw KeyStoreException.Unavailable("could not save the wrapped key")
        return secret
    }

    private fun unwrap(): ByteArray {
        val key = wrappingKey(create = false) ?: throw KeyStoreException.Unavailable("keystore key missing")
        val sealed = wrapped.readBytes()
        if (sealed.size < IV_BYTES + 16) throw KeyStoreException.Unavailable("wrapped key damaged")
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed, 0, IV_BYTES))
        return cipher.doFinal(sealed, IV_BYTES, sealed.size - IV_BYTES)
    }

    override fun destroyKey() {
        runCatching { keystore().deleteEntry(ALIAS) }
        if (wrapped.exists()) {
            wrapped.writeBytes(ByteArray(wrapped.length().toInt()))
            wrapped.delete()
        }
    }

    private companion object {
        const val PROVIDER = "AndroidKeyStore"
        const val ALIAS = "fieldcase-root-wrap"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val IV_BYTES = 12
        const val AUTH_VALIDITY_SECONDS = 120
    }
}

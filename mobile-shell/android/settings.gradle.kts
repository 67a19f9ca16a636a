// The fieldcase Android app (Compose). Not buildable on the project's machines (no Android SDK or
// NDK there): see mobile-shell/README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "fieldcase"
include(":app")

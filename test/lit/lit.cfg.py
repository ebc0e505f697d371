# lit configuration for Kiln's IR-in, FileCheck-out tests.
import os
import lit.formats

config.name = "Kiln"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
# One config serves two suites: test/lit and the pass tests beside each pass
# family (passes/*/test); each site config names its own source root.
config.test_source_root = getattr(config, "kiln_test_source_root", os.path.dirname(__file__))
config.test_exec_root = config.kiln_test_exec_root
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "Inputs"]

# Kiln's tools first, then LLVM's (FileCheck, not, count).
config.environment["PATH"] = os.pathsep.join(
    [config.kiln_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", os.environ["PATH"])])
config.substitutions.append(("%models", config.kiln_models_dir))
config.substitutions.append(("%kiln_lib", os.path.join(config.kiln_binary_dir, "lib")))
config.substitutions.append(("%python", config.python_executable))
# The cuda backend compiles where the CUDA toolkit's libdevice is (tests: REQUIRES: cuda-toolkit).
for toolkit in [os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]:
    if toolkit and os.path.exists(os.path.join(toolkit, "nvvm", "libdevice", "libdevice.10.bc")):
        config.available_features.add("cuda-toolkit")
        break

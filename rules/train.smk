# Part B training, one job per epoch:
#   init_model -> epoch_000.pt -> train_epoch -> epoch_001.pt -> ... -> epoch_<epochs>.pt
# A killed run loses at most the epoch in flight; a changed recipe retrains from epoch 1.


rule init_model:
    output:
        paths.checkpoint("{model}", 0),
    log:
        "logs/part_b/{model}/init_model.log",
    benchmark:
        paths.BENCHMARKS["init_model"]
    priority: lambda wc: recipes.epoch_priority(config, wc.model, 1) + 1  # a rule's priority is not inherited: lead the chain
    conda:
        TORCH_ENV
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        recipe=lambda wc: recipes.recipe(config, wc.model),
        seed=config["seed"],
    script:
        "../scripts/init_model.py"


rule train_epoch:
    input:
        checkpoint=previous_checkpoint,
        mnist=MNIST_READY,
    output:
        paths.CHECKPOINT,
    log:
        "logs/part_b/{model}/train_epoch_{epoch}.log",
    benchmark:
        paths.BENCHMARKS["train_epoch"]
    wildcard_constraints:
        epoch=r"(?!000)\d{3}",
    priority: lambda wc: recipes.epoch_priority(config, wc.model, int(wc.epoch))
    conda:
        TORCH_ENV
    threads: job_threads(8)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        **runtime_params(),
        recipe=lambda wc: recipes.recipe(config, wc.model),
        data_root=mnist_root,
    script:
        "../scripts/train_epoch.py"


# the final model as reusable weights: safetensors + a JSON of its architecture (fundiff.unet.load_final)
rule export_model:
    input:
        checkpoint=lambda wc: final_checkpoint(wc.model),
    output:
        weights=paths.model_file("{model}", "final.safetensors"),
        architecture=paths.model_file("{model}", "final.json"),
        device=paths.DEVICE,
    log:
        "logs/part_b/{model}/export_model.log",
    benchmark:
        paths.BENCHMARKS["export_model"]
    conda:
        TORCH_ENV
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/export_model.py"

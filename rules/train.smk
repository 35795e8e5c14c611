# Part B training, one job per epoch:
#   init_model -> epoch_000.pt -> train_epoch -> epoch_001.pt -> ... -> epoch_<epochs>.pt
# A killed run loses at most the epoch in flight; a changed recipe retrains from epoch 1.


rule init_model:
    output:
        "results/part_b/{model}/checkpoints/epoch_000.pt",
    params:
        recipe=lambda wc: recipes.recipe(config, wc.model),
        seed=config["seed"],
    log:
        "logs/part_b/{model}/init_model.log",
    benchmark:
        "benchmarks/part_b/{model}/init_model.tsv"
    priority: lambda wc: recipes.epoch_priority(config, wc.model, 1) + 1  # a rule's priority is not inherited: lead the chain
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        TORCH_ENV
    script:
        "../scripts/init_model.py"


rule train_epoch:
    input:
        checkpoint=previous_checkpoint,
        mnist=MNIST_READY,
    output:
        "results/part_b/{model}/checkpoints/epoch_{epoch}.pt",
    wildcard_constraints:
        epoch=r"(?!000)\d{3}",
    params:
        recipe=lambda wc: recipes.recipe(config, wc.model),
        data_root=config["data"]["root"],
        **runtime_params(),
    log:
        "logs/part_b/{model}/train_epoch_{epoch}.log",
    benchmark:
        "benchmarks/part_b/{model}/train_epoch_{epoch}.tsv"
    threads: job_threads(8)
    priority: lambda wc: recipes.epoch_priority(config, wc.model, int(wc.epoch))
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        TORCH_ENV
    script:
        "../scripts/train_epoch.py"



# the final model as reusable weights: safetensors + a JSON of its architecture (fundiff.unet.load_final)
rule export_model:
    input:
        checkpoint=lambda wc: final_checkpoint(wc.model),
    output:
        weights="results/part_b/{model}/final.safetensors",
        architecture="results/part_b/{model}/final.json",
    log:
        "logs/part_b/{model}/export_model.log",
    benchmark:
        "benchmarks/part_b/{model}/export_model.tsv"
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        TORCH_ENV
    script:
        "../scripts/export_model.py"

# What the Slurm scripts of this directory run on. Edit, then run ./submit-fisher.sh or ./submit-sweep.sh.
# Every path must be on a file system all nodes share. The scripts call `irr` from PATH (see docs/SCALE.md).
# A variable already set in the environment wins over the value here.

# The Fisher (irr fisher): the aligned model θ_A and its harmful prompt → refusal data.
: "${MODEL:=$HOME/models/llama-2-7b-chat}"
: "${SAFETY_DATA:=$HOME/data/refusals.jsonl}"
: "${MODULES:=q_proj,v_proj}"
: "${BATCH_SIZE:=8}"
: "${MAX_LENGTH:=512}"
: "${SHARDS:=8}"                        # array tasks; each computes the batches b with b mod SHARDS = its index
: "${WORK:=$HOME/irr-work}"             # the parts go to $WORK/fisher/of-$SHARDS, the merged Fisher to $WORK/fisher.safetensors

# The sweep (irr sweep): every option after `irr sweep`, as one string, without --output, --point or --collect.
: "${SWEEP_ARGS:=--base $MODEL --adapter $HOME/code-lora --safety-vector $WORK/safety-vector.safetensors --fisher $WORK/fisher.safetensors \
  --calibration $HOME/data/code_train.json --modules q_proj,v_proj --sparsity 0,0.1,0.2,0.3,0.5,0.7 \
  --harmful-val $HOME/data/harmful_val.csv --task-val $HOME/data/code_val.jsonl --task-metric contains}"
: "${SWEEP_DIR:=$WORK/sweep}"

# Evaluation through a serving engine on GPU nodes (optional). ENGINE_SERVE makes every model the sweep evaluates be
# served by this command, which irr starts and stops per model ({model}, {name}, {port} filled in by irr); leave it
# empty to generate on the CPU. A LoRA fine-tune's θ_F (and Safe LoRA's points) are a base model with an adapter:
# ENGINE_SERVE_ADAPTER serves those ({adapter}). GRES is the GPU request of the sweep's tasks when either is set, and
# of the eval job. Write the commands in single quotes, as below (their braces would end a ${VAR:=...} default).
ENGINE_SERVE=${ENGINE_SERVE-}            # e.g. ENGINE_SERVE='vllm serve {model} --served-model-name {name} --port {port} --dtype bfloat16'
ENGINE_SERVE_ADAPTER=${ENGINE_SERVE_ADAPTER-}  # e.g. ENGINE_SERVE_ADAPTER='vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port} --dtype bfloat16'
: "${GRES:=gpu:1}"

# eval-vllm.sbatch: the model to evaluate on the held-out test split, served by vLLM, and where the runs go.
: "${EVAL_MODEL:=$SWEEP_DIR/chosen}"
: "${HARMFUL_TEST:=$HOME/data/harmful_test.csv}"
: "${ATTACKS:=none,prefill,prefix-injection}"
: "${TASK_TEST:=$HOME/data/code_test.jsonl}"
: "${TASK_METRIC:=contains}"
: "${EVAL_DIR:=$WORK/eval}"
: "${VLLM_ARGS:=}"                       # more vllm serve options for the eval job, e.g. --dtype bfloat16 (as in ENGINE_SERVE, to compare like with like)

# Resources of one array task (a CPU node; irr uses every core it is given).
: "${CPUS:=32}"
: "${MEM:=64G}"
: "${TIME:=04:00:00}"
: "${MERGE_MEM:=8G}"                     # the Fisher merge holds one tensor at a time; raise it for very large tensors
export MODEL SAFETY_DATA MODULES BATCH_SIZE MAX_LENGTH SHARDS WORK SWEEP_ARGS SWEEP_DIR ENGINE_SERVE ENGINE_SERVE_ADAPTER GRES MERGE_MEM
export EVAL_MODEL HARMFUL_TEST ATTACKS TASK_TEST TASK_METRIC EVAL_DIR VLLM_ARGS CPUS MEM TIME

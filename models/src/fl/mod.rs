//! Family `fl`: federated learning. `learn` holds the learning studies of issue 8 (FedMomentum LoRA
//! aggregation, pFedNavi personalization, POLAR backdoor attacks against robust aggregation).

pub mod learn;
